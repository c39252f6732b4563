// supervise.mjs: a program that is not a node service (Envoy under npm start)
// stops with its supervisor, as the services do.
import { execFileSync, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";
import { eventually } from "./fixtures.js";
import { spawnService } from "./children.js";

const SUPERVISE = fileURLToPath(new URL("./supervise.mjs", import.meta.url));

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const childrenOf = (pid: number): number[] => {
  try {
    return execFileSync("pgrep", ["-P", String(pid)], { encoding: "utf8" }).trim().split("\n").filter(Boolean).map(Number);
  } catch {
    return [];
  }
};

it("stops the program when the supervisor's pipe on stdin closes (a supervisor killed with -9)", async () => {
  const wrapper = spawn(process.execPath, [SUPERVISE, "sleep", "60"], { stdio: ["pipe", "ignore", "ignore"] });
  let program = 0;
  await eventually(async () => (program = childrenOf(wrapper.pid!)[0] ?? 0) > 0, 5000, "the program to start");
  expect(alive(program)).toBe(true);
  wrapper.stdin!.end(); // what the supervisor's death does to the pipe
  await eventually(async () => !alive(program) && wrapper.exitCode !== null, 8000, "the program to stop");
});

it("passes SIGTERM on, through spawnService; a program ended by a signal is exit code 1", async () => {
  const service = spawnService("sleeper", { command: "sleep", args: ["60"] }, { cwd: process.cwd(), env: process.env });
  await eventually(async () => childrenOf(service.pid).length > 0, 5000, "the program to start");
  const [program] = childrenOf(service.pid);
  await service.stop(5000);
  expect(alive(program)).toBe(false);
  expect(await service.exited).toBe("exit code 1"); // sleep ended by SIGTERM
});

it("kill() (SIGKILL) takes the program down with its supervise.mjs wrapper, through spawnService", async () => {
  const service = spawnService("sleeper", { command: "sleep", args: ["60"] }, { cwd: process.cwd(), env: process.env });
  await eventually(async () => childrenOf(service.pid).length > 0, 5000, "the program to start");
  const [program] = childrenOf(service.pid);
  service.kill();
  expect(await service.exited).toBe("signal SIGKILL");
  await eventually(async () => !alive(program), 5000, "the program to die with its wrapper");
});
