// npm run envoy:gen — writes envoy/envoy.yaml (production) and
// envoy/envoy.local.yaml (npm start) from envoy/src, and envoy/seckill.pb (the
// descriptor set the JSON transcoder reads) from proto/.

import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { buildDescriptorSet, DESCRIPTOR_FILE } from "./descriptor.js";
import { renderVariant, VARIANTS } from "./render.js";
import { OUTPUT_FILES } from "./topology.js";

const root = resolve(import.meta.dirname, "../..");
for (const variant of VARIANTS) {
  writeFileSync(resolve(root, OUTPUT_FILES[variant]), renderVariant(variant));
  console.log(`wrote ${OUTPUT_FILES[variant]}`);
}
writeFileSync(resolve(root, DESCRIPTOR_FILE), buildDescriptorSet());
console.log(`wrote ${DESCRIPTOR_FILE}`);
