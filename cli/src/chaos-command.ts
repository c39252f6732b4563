// `seckill chaos [options]`: the fault campaign of the repository this command
// belongs to. It needs the repository (it starts the services from their
// sources, with private Redis, NATS and Postgres), not a running backend, so it
// runs `npm run chaos -- <options>` at the repository root, with the same
// arguments and exit code; `seckill chaos --help` shows its options. An
// installed package has no repository around it: there it says so and exits 1
// instead of letting npm fail on a missing script.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Command } from "commander";
import type { CommandContext, Io } from "./context.js";

// Two levels up from cli/src/ (the source) or cli/dist/ (the bundle): the checkout's root.
const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** The command that runs the campaign (npm, or npm.cmd on Windows). */
export function chaosInvocation(args: string[], root = REPO_ROOT): { command: string; args: string[]; cwd: string } {
  return { command: process.platform === "win32" ? "npm.cmd" : "npm", args: ["run", "--silent", "chaos", "--", ...args], cwd: root };
}

/** Whether `root` is a checkout with the campaign: its package.json has the `chaos` script. */
export function hasCampaign(root: string): boolean {
  try {
    const manifest = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as { scripts?: Record<string, string> };
    return typeof manifest.scripts?.chaos === "string";
  } catch {
    return false;
  }
}

export const NEEDS_CHECKOUT =
  "seckill: chaos needs a checkout of the Seckill Mesh repository: the fault campaign starts the services from their sources " +
  "(npm run chaos in the repository), and this seckill is an installed package with no repository around it. " +
  "In a checkout: npm install, then npx seckill chaos.";

/** Runs the campaign in the checkout at `root` and returns its exit code (1 when there is none). */
export async function runChaos(args: string[], io: Io, root = REPO_ROOT): Promise<number> {
  if (!hasCampaign(root)) {
    io.err(NEEDS_CHECKOUT);
    return 1;
  }
  const run = chaosInvocation(args, root);
  return new Promise<number>((resolve) => {
    const child = spawn(run.command, run.args, { cwd: run.cwd, stdio: "inherit" });
    child.once("error", (error) => {
      io.err(`seckill: could not run the fault campaign (${run.command} ${run.args.join(" ")}): ${error.message}`);
      resolve(1);
    });
    child.once("close", (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

export function chaosCommand(ctx: CommandContext): Command {
  return new Command("chaos")
    .description("Run the fault campaign (npm run chaos; needs a checkout of the repository): seeded kills, pauses and link faults during sales, then the invariant checks")
    .helpOption(false)
    .allowUnknownOption(true)
    .allowExcessArguments(true)
    .argument(
      "[options...]",
      "the campaign's options: --seed, --runs, --from-run, --sales, --users, --stock, --duration, --faults, --max-concurrent, --fault-ms, --settle, --json, --help",
    )
    .action(async (args: string[]) => {
      ctx.exitCode = await runChaos(args, ctx.io);
    });
}
