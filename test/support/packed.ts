// A workspace package as its users get it: `npm pack` (which runs its
// prepack), then `npm install` of the tarball into a project of its own outside
// the repository, with packages from the npm cache; and a way to run commands
// there without the enclosing npm's environment.
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = fileURLToPath(new URL("../..", import.meta.url));
export const NPM = process.platform === "win32" ? "npm.cmd" : "npm";
export const NPX = process.platform === "win32" ? "npx.cmd" : "npx";

// The npm_* variables of an enclosing `npm test` (npm_config_local_prefix among
// them) would send the nested npm commands to the repository; NODE_OPTIONS
// could bring a TypeScript loader along. npx is told never to fetch a package.
const cleanEnv = {
  ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key) && key !== "NODE_OPTIONS")),
  npm_config_yes: "false",
};

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end (or its timeout) and resolves with its exit code and output; never rejects. */
export function run(command: string, args: string[], cwd: string, timeout: number, env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd, env: { ...cleanEnv, ...env }, timeout, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

/** The run, or an error with its output when it exited non-zero. */
export function succeeded(what: string, result: Run): Run {
  if (result.code !== 0) throw new Error(`${what} exited ${result.code}:\n${result.stderr}\n${result.stdout}`);
  return result;
}

export interface PackedInstall {
  /** The temporary folder holding the tarball and the project; remove() deletes it. */
  dir: string;
  /** The project the tarball is installed into. */
  project: string;
  remove(): void;
}

/**
 * Packs the workspace folder (e.g. "sdk", "cli") and installs the tarball, with
 * `packages` beside it, into a new project whose package.json has `manifest`'s
 * fields.
 */
export async function packAndInstall(workspace: string, manifest: Record<string, unknown>, packages: string[] = []): Promise<PackedInstall> {
  const dir = mkdtempSync(path.join(tmpdir(), `seckill-${workspace}-pack-`));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  try {
    succeeded("npm pack", await run(NPM, ["pack", "--pack-destination", dir], path.join(REPO, workspace), 120_000));
    const tarball = readdirSync(dir).find((f) => f.endsWith(".tgz"));
    if (!tarball) throw new Error(`npm pack left no tarball in ${dir}`);
    const project = path.join(dir, "project");
    mkdirSync(project);
    writeFileSync(path.join(project, "package.json"), JSON.stringify({ name: "project", version: "1.0.0", private: true, ...manifest }));
    const install = ["install", "--prefer-offline", "--no-audit", "--no-fund", path.join(dir, tarball), ...packages];
    succeeded("npm install of the tarball", await run(NPM, install, project, 180_000));
    return { dir, project, remove };
  } catch (error) {
    remove();
    throw error;
  }
}
