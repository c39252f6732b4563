// The load generator's child process: one run per process, options in and
// the result out over IPC (see runLoadInChild in h2-load.ts).
import { runLoad, type LoadOptions } from "./h2-load.js";

process.once("message", (message: { options: LoadOptions }) => {
  runLoad(message.options).then(
    (result) => process.send!({ result }, () => process.exit(0)),
    (error: unknown) => process.send!({ error: error instanceof Error ? error.stack ?? error.message : String(error) }, () => process.exit(1)),
  );
});
