// Before any test: make sure Redis, Postgres and NATS JetStream answer at the
// configured URLs, starting private instances under .local/ when they do not.
import { fileURLToPath } from "node:url";
import { readConfig } from "../../services/common/config.js";
import { ensureDependencies, type RunningDependencies } from "../../tools/stack/dependencies.js";

let running: RunningDependencies | undefined;

export async function setup(): Promise<void> {
  const config = readConfig();
  running = await ensureDependencies(config, {
    stateDir: fileURLToPath(new URL("../../.local/test", import.meta.url)),
    log: (line) => process.stderr.write(`[deps] ${line}\n`),
  });
}

export async function teardown(): Promise<void> {
  await running?.stop();
}
