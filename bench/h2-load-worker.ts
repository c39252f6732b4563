// The load generator's child process: one run per process, options in and
// the result out over IPC (see runLoadInChild in h2-load.ts). Once its pool is
// built and its connections are open it says { ready }, and starts on { go }.
import { runLoad, type LoadOptions } from "./h2-load.js";

const go = () =>
  new Promise<void>((resolve) => {
    process.once("message", () => resolve());
    process.send!({ ready: true });
  });

process.once("message", (message: { options: LoadOptions }) => {
  runLoad(message.options, { ready: go }).then(
    (result) => process.send!({ result }, () => process.exit(0)),
    (error: unknown) => process.send!({ error: error instanceof Error ? (error.stack ?? error.message) : String(error) }, () => process.exit(1)),
  );
});
