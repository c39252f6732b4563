// supervise.mjs: a program that is not a node service (Envoy under npm start)
// stops with its supervisor, as the services do, and is restarted like them.
import { execFileSync, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";
import { eventually } from "./fixtures.js";
import { spawnService } from "./children.js";
import { isListening } from "./health.js";
import { freePort } from "./ports.js";
import { Supervisor } from "./supervisor.js";

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
    return execFileSync("pgrep", ["-P", String(pid)], { encoding: "utf8" })
      .trim()
      .split("\n")
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
};

it("stops the program when the supervisor's pipe on stdin closes (a supervisor killed with -9)", async () => {
  const wrapper = spawn(process.execPath, [SUPERVISE, "sleep", "60"], { stdio: ["pipe", "ignore", "ignore"] });
  let program = 0;
  const started = async () => {
    program = childrenOf(wrapper.pid!)[0] ?? 0;
    return program > 0;
  };
  await eventually(started, 5000, "the program to start");
  expect(alive(program)).toBe(true);
  wrapper.stdin!.end(); // what the supervisor's death does to the pipe
  await eventually(async () => !alive(program) && (wrapper.exitCode !== null || wrapper.signalCode !== null), 8000, "the program to stop");
});

it("passes SIGTERM on, through spawnService; it ends by the signal that ended the program", async () => {
  const service = spawnService("sleeper", { command: "sleep", args: ["60"] }, { cwd: process.cwd(), env: process.env });
  await eventually(async () => childrenOf(service.pid).length > 0, 5000, "the program to start");
  const [program] = childrenOf(service.pid);
  await service.stop(5000);
  expect(alive(program)).toBe(false);
  expect(await service.exited).toBe("signal SIGTERM"); // sleep ended by SIGTERM
});

it("kill() (SIGKILL) takes the program down with its supervise.mjs wrapper, through spawnService", async () => {
  const service = spawnService("sleeper", { command: "sleep", args: ["60"] }, { cwd: process.cwd(), env: process.env });
  await eventually(async () => childrenOf(service.pid).length > 0, 5000, "the program to start");
  const [program] = childrenOf(service.pid);
  service.kill();
  expect(await service.exited).toBe("signal SIGKILL");
  await eventually(async () => !alive(program), 5000, "the program to die with its wrapper");
});

it("a program killed with -9 reads as signal SIGKILL", async () => {
  const service = spawnService("sleeper", { command: "sleep", args: ["60"] }, { cwd: process.cwd(), env: process.env });
  await eventually(async () => childrenOf(service.pid).length > 0, 5000, "the program to start");
  process.kill(childrenOf(service.pid)[0], "SIGKILL");
  expect(await service.exited).toBe("signal SIGKILL");
});

it("a wrapper killed with -9 on its own leaves no program behind: its process group goes with it", async () => {
  const service = spawnService("sleeper", { command: "sleep", args: ["60"] }, { cwd: process.cwd(), env: process.env });
  await eventually(async () => childrenOf(service.pid).length > 0, 5000, "the program to start");
  const [program] = childrenOf(service.pid);
  process.kill(service.pid, "SIGKILL"); // the wrapper only, as `kill -9 <pid>` does
  expect(await service.exited).toBe("signal SIGKILL");
  await eventually(async () => !alive(program), 5000, "the orphaned program to be killed");
});

it("under a Supervisor, a program killed with -9 (the wrapper or the program) comes back listening on its port", { timeout: 30_000 }, async () => {
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const server = { command: process.execPath, args: ["-e", `require("node:net").createServer().listen(${port}, "127.0.0.1", () => console.log("listening"))`] };
  const logs: string[] = [];
  const supervisor = new Supervisor({
    name: "listener",
    readyAs: `listening on ${address}`,
    spawn: () => spawnService("listener", server, { cwd: process.cwd(), env: process.env }),
    ready: async (wanted) => {
      while (wanted()) {
        if (await isListening(address)) return true;
        await new Promise((r) => setTimeout(r, 50));
      }
      return false;
    },
    log: (line) => logs.push(line),
    giveUp: (message) => logs.push(`gave up: ${message}`),
  }).start();
  try {
    await eventually(() => supervisor.wasReady, 10_000, "the listener to be ready");
    const wrapper = supervisor.pid;
    process.kill(wrapper, "SIGKILL");
    await eventually(() => logs.some((l) => l.includes("again")), 10_000, "the listener to come back");
    expect(logs[0]).toMatch(/^listener exited \(signal SIGKILL\); restarting in 0.5 s \(restart 1\)\n  its last lines:\n    listening$/);
    expect(logs[1]).toBe(`listener is listening on ${address} again (pid ${supervisor.pid}, restart 1)`);
    expect(supervisor.pid).not.toBe(wrapper);
    expect(await isListening(address)).toBe(true);

    process.kill(childrenOf(supervisor.pid)[0], "SIGKILL"); // the program itself this time
    await eventually(() => logs.some((l) => l.includes("restart 2)") && l.includes("again")), 10_000, "the listener to come back again");
    expect(logs[2]).toMatch(/^listener exited \(signal SIGKILL\); restarting in 1 s \(restart 2\)/);
    expect(await isListening(address)).toBe(true);
  } finally {
    const pid = supervisor.pid;
    const program = childrenOf(pid)[0];
    await supervisor.stop(5000);
    expect(alive(pid)).toBe(false);
    if (program) expect(alive(program)).toBe(false);
  }
  expect(logs.filter((l) => l.startsWith("gave up"))).toEqual([]);
});
