// npm run envoy:gen — writes envoy/envoy.yaml (production) and
// envoy/envoy.local.yaml (npm start) from envoy/src.

import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { renderVariant, VARIANTS } from "./render.js";
import { OUTPUT_FILES } from "./topology.js";

const root = resolve(import.meta.dirname, "../..");
for (const variant of VARIANTS) {
  writeFileSync(resolve(root, OUTPUT_FILES[variant]), renderVariant(variant));
  console.log(`wrote ${OUTPUT_FILES[variant]}`);
}
