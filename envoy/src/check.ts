// npm run envoy:check — validates envoy/envoy.yaml and envoy/envoy.local.yaml
// (by Envoy itself, `envoy --mode validate` with the files they reference in
// place, then the edge's own rules) and fails when either, or
// envoy/seckill.pb, is not what `npm run envoy:gen` writes from envoy/src and
// proto/. Envoy comes from PATH or .local/envoy (installed when missing).

import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { ensureEnvoy, EnvoyUnavailableError } from "../../tools/envoy/binary.js";
import { buildDescriptorSet, DESCRIPTOR_FILE } from "./descriptor.js";
import { VARIANTS } from "./render.js";
import { OUTPUT_FILES } from "./topology.js";
import { checkConfigFile, formatIssue } from "./validate.js";

const root = resolve(import.meta.dirname, "../..");
let envoy: { bin: string; version: string };
try {
  envoy = ensureEnvoy((line) => console.error(line));
} catch (error) {
  if (!(error instanceof EnvoyUnavailableError)) throw error;
  console.error(`FAIL  cannot validate without Envoy: ${error.message}`);
  process.exit(1);
}
let failed = false;
const descriptor = resolve(root, DESCRIPTOR_FILE);
if (!existsSync(descriptor) || !readFileSync(descriptor).equals(buildDescriptorSet())) {
  console.error(`FAIL  ${DESCRIPTOR_FILE}: stale: differs from what buf builds from proto/: run npm run envoy:gen`);
  failed = true;
} else {
  console.log(`ok    ${DESCRIPTOR_FILE}: up to date with proto/`);
}
for (const variant of VARIANTS) {
  const file = OUTPUT_FILES[variant];
  const path = resolve(root, file);
  const issues = checkConfigFile(existsSync(path) ? readFileSync(path, "utf8") : undefined, variant, file, envoy.bin);
  if (issues.length === 0) console.log(`ok    ${file} (${variant}): accepted by envoy ${envoy.version} --mode validate, edge rules hold, up to date`);
  for (const issue of issues) console.error(`FAIL  ${file}: ${formatIssue(issue)}`);
  failed ||= issues.length > 0;
}
process.exit(failed ? 1 : 0);
