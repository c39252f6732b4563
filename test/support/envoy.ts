// The Envoy binary of the live edge tests. Global setup installs the pinned one
// when python3 is there; a file that needs Envoy asks here. Under CI=true a
// missing Envoy fails the run instead of skipping the tests.
import { findEnvoy, HOW_TO_GET_ENVOY } from "../../tools/envoy/binary.js";

export function envoyForTests(what: string): string | undefined {
  const bin = findEnvoy();
  if (bin) return bin;
  const message = `no envoy on PATH or in .local/envoy: ${what} need it (npm run envoy:install; or ${HOW_TO_GET_ENVOY})`;
  if (process.env.CI === "true") throw new Error(message);
  console.warn(`${message}; skipped`);
  return undefined;
}
