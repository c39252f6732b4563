// The command tree: global options, the sale commands and simulate, and the
// one place errors become a message and an exit code.
import { Command, CommanderError, Option } from "commander";
import { CliError } from "./backend.js";
import { chaosCommand } from "./chaos-command.js";
import { createContext, type Io } from "./context.js";
import { deadLetterCommand } from "./dead-letter-commands.js";
import { DEFAULT_EDGE_ADDRESS } from "./edge.js";
import { integer } from "./options.js";
import { saleCommand } from "./sale-commands.js";
import { simulateCommand } from "./simulate-command.js";

export function buildProgram(io: Io): { program: Command; exitCode: () => number } {
  const ctx = createContext(io);
  const program = new Command("seckill")
    .description("Operate flash sales on a Seckill Mesh backend and simulate a crowd buying one (talks gRPC through @seckill/sdk).")
    .addOption(new Option("--inventory <addr>", "inventory service (SaleService) address").env("INVENTORY_ADDR").default("127.0.0.1:50051"))
    .addOption(new Option("--order <addr>", "order service (OrderService) address").env("ORDER_ADDR").default("127.0.0.1:50052"))
    .addOption(new Option("--gateway <addr>", "gateway (AccessService: purchase tokens) address").env("GATEWAY_ADDR").default("127.0.0.1:50054"))
    .addOption(new Option("--edge <addr>", "the edge (Envoy) address: simulate's buyers call through it").env("EDGE_ADDR").default(DEFAULT_EDGE_ADDRESS))
    .addOption(new Option("--writer <addr>", "order writer (DeadLetterService) address").env("WRITER_ADDR").default("127.0.0.1:50053"))
    .addOption(new Option("--deadline <ms>", "deadline of each gRPC call").argParser(integer(1, 600_000)).default(2000))
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.out(s.replace(/\n$/, "")),
      writeErr: (s) => io.err(s.replace(/\n$/, "")),
    });
  program.addCommand(saleCommand(ctx));
  program.addCommand(simulateCommand(ctx));
  program.addCommand(deadLetterCommand(ctx));
  program.addCommand(chaosCommand(ctx));
  for (const cmd of [program, ...program.commands, ...program.commands.flatMap((c) => c.commands)]) {
    cmd.exitOverride().configureOutput(program.configureOutput()).showHelpAfterError("(run with --help for usage)");
  }
  return { program, exitCode: () => ctx.exitCode };
}

/** Runs the CLI for `argv` (user arguments only) and returns the exit code; never exits the process. */
export async function runCli(argv: string[], io: Io): Promise<number> {
  const { program, exitCode } = buildProgram(io);
  try {
    await program.parseAsync(argv, { from: "user" });
    return exitCode();
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    if (error instanceof CliError) {
      io.err(`seckill: ${error.message}`);
      return error.exitCode;
    }
    io.err(`seckill: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    return 1;
  }
}

/** An Io over the process's stdout and stderr. */
export function processIo(): Io {
  return {
    out: (text) => process.stdout.write(`${text}\n`),
    err: (text) => process.stderr.write(`${text}\n`),
    stderr: process.stderr,
  };
}
