// Runs a program that is not a node service (Envoy) the way `npm start` runs
// its services: it stops when the supervisor's pipe on stdin closes, so a
// supervisor killed with -9 leaves no orphan behind. SIGTERM and SIGINT are
// passed on; the exit code is the program's.
//   node tools/stack/supervise.mjs <command> [args...]
import { spawn } from "node:child_process";

const [command, ...args] = process.argv.slice(2);
if (!command) {
  process.stderr.write("usage: node tools/stack/supervise.mjs <command> [args...]\n");
  process.exit(2);
}
const child = spawn(command, args, { stdio: ["ignore", "inherit", "inherit"] });
let stopping = false;
const stop = (signal) => {
  if (stopping) return;
  stopping = true;
  child.kill(signal);
  setTimeout(() => child.kill("SIGKILL"), 5000).unref();
};
child.once("error", (error) => {
  process.stderr.write(`${command}: ${error.message}\n`);
  process.exit(127);
});
child.once("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => stop(signal));
process.stdin.on("close", () => stop("SIGTERM"));
process.stdin.on("end", () => stop("SIGTERM"));
process.stdin.resume();
