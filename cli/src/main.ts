// Entry point of the `seckill` command: cli/bin/seckill.js loads it through tsx in the repository, or its bundle (cli/dist) in the installed package.
import { processIo, runCli } from "./program.js";

process.once("SIGINT", () => {
  process.stderr.write("\nseckill: interrupted\n");
  process.exit(130);
});

const code = await runCli(process.argv.slice(2), processIo());
process.exitCode = code;
// gRPC channels are closed by then; this only guards against a stray handle keeping the process alive.
setTimeout(() => process.exit(code), 2000).unref();
