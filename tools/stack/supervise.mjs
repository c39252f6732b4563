// Runs a program that is not a node service (Envoy) the way `npm start` runs
// its services: it stops when the supervisor's pipe on stdin closes, so a
// supervisor killed with -9 leaves no orphan behind. SIGTERM and SIGINT are
// passed on; it ends as the program ended: with its exit code, or by the same
// signal (a program killed with -9 reads "signal SIGKILL" to the supervisor).
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
child.once("exit", (code, signal) => {
  if (code !== null || !signal) process.exit(code ?? 0);
  process.removeAllListeners(signal);
  process.kill(process.pid, signal);
  setTimeout(() => process.exit(1), 1000); // a signal this process ignores anyway
});
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => stop(signal));
process.stdin.on("close", () => stop("SIGTERM"));
process.stdin.on("end", () => stop("SIGTERM"));
process.stdin.resume();
