// `seckill chaos [options]`: the fault campaign of the repository this command
// belongs to. It needs the repository (it starts the services from their
// sources, with private Redis, NATS and Postgres), not a running backend, so it
// runs `npm run chaos -- <options>` at the repository root, with the same
// arguments and exit code; `seckill chaos --help` shows its options.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Command } from "commander";
import type { CommandContext } from "./context.js";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** The command that runs the campaign (npm, or npm.cmd on Windows). */
export function chaosInvocation(args: string[]): { command: string; args: string[]; cwd: string } {
  return { command: process.platform === "win32" ? "npm.cmd" : "npm", args: ["run", "--silent", "chaos", "--", ...args], cwd: REPO_ROOT };
}

export function chaosCommand(ctx: CommandContext): Command {
  return new Command("chaos")
    .description("Run the fault campaign (npm run chaos): seeded kills, pauses and link faults during sales, then the invariant checks")
    .helpOption(false)
    .allowUnknownOption(true)
    .allowExcessArguments(true)
    .argument("[options...]", "the campaign's options: --seed, --runs, --from-run, --sales, --users, --stock, --duration, --faults, --max-concurrent, --fault-ms, --settle, --json, --help")
    .action(async (args: string[]) => {
      const run = chaosInvocation(args);
      ctx.exitCode = await new Promise<number>((resolve) => {
        const child = spawn(run.command, run.args, { cwd: run.cwd, stdio: "inherit" });
        child.once("error", (error) => {
          ctx.io.err(`seckill: could not run the fault campaign (${run.command} ${run.args.join(" ")}): ${error.message}`);
          resolve(1);
        });
        child.once("close", (code, signal) => resolve(code ?? (signal ? 1 : 0)));
      });
    });
}
