// Before any test: make sure Redis, Postgres and NATS JetStream answer at the
// configured URLs, starting private instances under .local/ when they do not,
// and that the pinned Envoy is there for the live edge tests (installed into
// .local/envoy when python3 is; without it those tests skip, or fail under CI).
import { fileURLToPath } from "node:url";
import { readConfig } from "../../services/common/config.js";
import { ensureEnvoy, EnvoyUnavailableError } from "../../tools/envoy/binary.js";
import { ensureDependencies, type RunningDependencies } from "../../tools/stack/dependencies.js";

let running: RunningDependencies | undefined;

export async function setup(): Promise<void> {
  const log = (line: string) => process.stderr.write(`[deps] ${line}\n`);
  try {
    const envoy = ensureEnvoy(log);
    log(`envoy ${envoy.version}: ${envoy.bin}`);
  } catch (error) {
    if (!(error instanceof EnvoyUnavailableError) || process.env.CI === "true") throw error;
    log(`envoy: ${error.message}`);
  }
  const config = readConfig();
  running = await ensureDependencies(config, {
    stateDir: fileURLToPath(new URL("../../.local/test", import.meta.url)),
    log,
  });
}

export async function teardown(): Promise<void> {
  await running?.stop();
}
