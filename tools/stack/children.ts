// The service processes `npm start` runs: `node --import tsx <file>`, output
// lines prefixed with the service's name (the last ones kept for crash
// reports), and a stop that escalates from SIGTERM to SIGKILL.
import { spawn, type ChildProcess } from "node:child_process";
import readline from "node:readline";
import { fileURLToPath } from "node:url";
import type { Readable, Writable } from "node:stream";
import { SUPERVISED_ENV } from "../../services/common/runner.js";

export interface ServiceProcess {
  name: string;
  pid: number;
  /** Resolves once the process has ended, with how: "exit code 1", "signal SIGKILL". */
  exited: Promise<string>;
  running(): boolean;
  /** SIGTERM, then SIGKILL if it is still running after graceMs; resolves when it is gone. */
  stop(graceMs: number): Promise<void>;
  kill(): void;
  /** Its last lines of output (stdout and stderr as they came), at most TAIL_LINES. */
  lastLines(): string[];
}

/** How many of a process's last output lines are kept for crash reports. */
export const TAIL_LINES = 40;

/**
 * A bounded V8 heap: without it V8 lets garbage pile up under load (the order
 * service reached 260 MB RSS under 3× overload in the bench; 130 MB with these).
 */
export const SERVICE_HEAP_FLAGS = ["--max-old-space-size=128", "--max-semi-space-size=16"];

/** Children still running: killed if this process exits without stopping them (a crash, process.exit). */
const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of live) killGroup(child);
});

/**
 * SIGKILL to the child's process group (it leads one: detached), so that a
 * program run under supervise.mjs dies with it; a wrapper killed -9 cannot
 * pass the signal on.
 */
function killGroup(child: ChildProcess, leaderToo = true): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    if (leaderToo) child.kill("SIGKILL"); // the group is gone already
  }
}

const SUPERVISE = fileURLToPath(new URL("./supervise.mjs", import.meta.url));

/** A program that is not a node service (Envoy): its path and arguments, run under supervise.mjs. */
export interface Program {
  command: string;
  args: string[];
}

export interface SpawnOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Every line of its output, as it comes. */
  onLine?: (line: string) => void;
}

export function spawnService(name: string, file: string | Program, opts: SpawnOptions): ServiceProcess {
  // A bundle from dist/ runs on plain node; a .ts file through tsx's loader
  // (`--import tsx` resolves from cwd, which is the repository).
  // detached: its own process group, so a terminal's Ctrl-C reaches only the
  // supervisor, which then stops the services in order with one SIGTERM each.
  // SERVICE_NODE_ARGS: extra node flags for the services, e.g. "--cpu-prof
  // --cpu-prof-dir=.local/prof" (flags NODE_OPTIONS does not allow); they come
  // after the defaults, so they can override them.
  const extra = (opts.env.SERVICE_NODE_ARGS ?? "").split(/\s+/).filter(Boolean);
  // Another program (Envoy) runs under supervise.mjs, which gives it the same stdin rule.
  const args =
    typeof file === "string" ? [...SERVICE_HEAP_FLAGS, ...extra, ...(file.endsWith(".ts") ? ["--import", "tsx", file] : [file])] : [SUPERVISE, file.command, ...file.args];
  const child = spawn(process.execPath, args, {
    cwd: opts.cwd,
    // stdin stays open while the supervisor lives: the service stops when it
    // closes, so a supervisor killed with -9 leaves no orphans behind.
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...opts.env, [SUPERVISED_ENV]: "1" },
    detached: true,
  });
  live.add(child);
  const tail: string[] = [];
  const remember = (line: string) => {
    opts.onLine?.(line);
    tail.push(line);
    if (tail.length > TAIL_LINES) tail.shift();
  };
  prefixLines(child.stdout!, process.stdout, name, remember);
  prefixLines(child.stderr!, process.stderr, name, remember);

  const exited = new Promise<string>((resolve) => {
    child.once("error", (error) => {
      live.delete(child);
      resolve(`could not be started: ${error.message}`);
    });
    // What the process leaves behind in its group goes with it: a program
    // under supervise.mjs whose wrapper was killed with -9 would otherwise
    // keep its ports (and hold the output pipes open, so "close" never came).
    child.once("exit", () => killGroup(child, false));
    // "close" comes after "exit" and after the output pipes are drained, so a
    // crash's last lines are printed before anyone reports the exit.
    child.once("close", (code, signal) => {
      live.delete(child);
      resolve(signal ? `signal ${signal}` : `exit code ${code}`);
    });
  });
  const running = () => live.has(child);

  return {
    name,
    pid: child.pid ?? -1,
    exited,
    running,
    kill: () => killGroup(child),
    lastLines: () => [...tail],
    async stop(graceMs) {
      if (!running()) return;
      child.kill("SIGTERM");
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), graceMs)));
      if (await Promise.race([exited.then(() => false), timedOut])) {
        process.stderr.write(`[stack] ${name} still running after ${graceMs / 1000} s: killing it\n`);
        killGroup(child);
      }
      await exited;
      clearTimeout(timer);
    },
  };
}

function prefixLines(input: Readable, output: Writable, name: string, remember: (line: string) => void): void {
  readline.createInterface({ input, crlfDelay: Infinity }).on("line", (line) => {
    remember(line);
    output.write(`[${name}] ${line}\n`);
  });
}
