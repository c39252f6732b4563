// npm run envoy:install — makes the pinned Envoy available (see binary.ts) and
// prints where it is. Exits 1 with how to get Envoy when it cannot.
import { ensureEnvoy, EnvoyUnavailableError, ENVOY_VERSION } from "./binary.js";

try {
  const { bin, version, installed } = ensureEnvoy((line) => console.error(line));
  if (version !== ENVOY_VERSION && process.env.CI === "true") {
    console.error(`FAIL  ${bin} is Envoy ${version}; CI runs the pinned ${ENVOY_VERSION}`);
    process.exit(1);
  }
  console.log(`envoy ${version}: ${bin}${installed ? " (installed now)" : ""}`);
} catch (error) {
  if (!(error instanceof EnvoyUnavailableError)) throw error;
  console.error(`FAIL  ${error.message}`);
  process.exit(1);
}
