// Envoy on a bootstrap the edge's generator built (envoy/src buildBootstrap),
// as the live edge tests and the benchmark run it: the bootstrap written to a
// temporary file, `envoy -c <file> --disable-hot-restart`, ready once its admin
// interface answers /ready; its counters read from admin /stats; stopped with
// SIGTERM, then SIGKILL, and killed when this process exits without stopping
// it. The binary comes from binary.ts.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { eventually } from "../stack/fixtures.js";

export interface RunningEnvoy {
  process: ChildProcess;
  pid: number;
  /** Envoy's admin interface, "http://127.0.0.1:<port>". */
  admin: string;
  /** What Envoy printed so far (stdout too unless `quietStdout`), the last `keepChunks` chunks. */
  output: string[];
  /** The last lines Envoy printed. */
  logTail(lines?: number): string;
  /** A counter or gauge of admin /stats; 0 when Envoy has none by that name. */
  stat(name: string): Promise<number>;
  stop(): Promise<void>;
}

export interface RunOptions {
  /** The admin port the bootstrap sets (its admin address is 127.0.0.1). */
  adminPort: number;
  /** Drop stdout (the access log of the generated config) instead of keeping it. */
  quietStdout?: boolean;
  /** Output chunks kept (default: all). */
  keepChunks?: number;
  readyTimeoutMs?: number;
}

export async function runEnvoy(bin: string, bootstrap: unknown, opts: RunOptions): Promise<RunningEnvoy> {
  const dir = mkdtempSync(join(tmpdir(), "seckill-envoy-"));
  const file = join(dir, "envoy.yaml");
  writeFileSync(file, stringify(bootstrap));
  const child = spawn(bin, ["-c", file, "--disable-hot-restart", "--log-level", "warn"], {
    stdio: ["ignore", opts.quietStdout ? "ignore" : "pipe", "pipe"],
  });
  const output: string[] = [];
  const keep = (d: Buffer) => {
    output.push(String(d));
    if (opts.keepChunks !== undefined && output.length > opts.keepChunks) output.splice(0, output.length - opts.keepChunks);
  };
  child.stdout?.on("data", keep);
  child.stderr!.on("data", keep);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  // If this process dies (an uncaught error, process.exit), Envoy goes with it.
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);
  void exited.then(() => process.off("exit", killOnExit));
  const running = () => child.exitCode === null && child.signalCode === null;
  const admin = `http://127.0.0.1:${opts.adminPort}`;
  const logTail = (lines = 10) => output.join("").trim().split("\n").slice(-lines).join("\n");

  const envoy: RunningEnvoy = {
    process: child,
    pid: child.pid ?? -1,
    admin,
    output,
    logTail,
    async stat(name) {
      const text = await (await fetch(`${admin}/stats?filter=${encodeURIComponent(`^${name.replace(/\./g, "\\.")}$`)}`)).text();
      const value = /: (\d+)/.exec(text)?.[1];
      return value === undefined ? 0 : Number(value);
    },
    async stop() {
      if (running()) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await eventually(
      async () => {
        if (!running()) throw new Error(`envoy exited (${child.exitCode ?? child.signalCode}):\n${logTail(30)}`);
        return fetch(`${admin}/ready`).then(
          (r) => r.ok,
          () => false,
        );
      },
      opts.readyTimeoutMs ?? 20_000,
      "envoy to be ready",
      100,
    );
  } catch (error) {
    await envoy.stop();
    throw error;
  }
  return envoy;
}
