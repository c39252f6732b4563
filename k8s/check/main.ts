// npm run k8s:check — renders every overlay with `kubectl kustomize` and checks
// each rendering (schema, workload rules, references, Services, Envoy's
// upstreams, the migration Job), and that the copies under generated/ are
// current. No cluster needed.
import { staleFiles } from "./generated-files.js";
import { checkRendering, formatProblem } from "./index.js";
import { newestMigrationId } from "./newest-migration.js";
import { overlayDir, overlayNames, render } from "./render.js";
import { errorMessage } from "../../services/common/error-message.js";

let failed = false;
for (const path of staleFiles()) {
  console.error(`FAIL  k8s/${path}: missing or stale: run npm run k8s:gen`);
  failed = true;
}
const newest = await newestMigrationId();
for (const overlay of overlayNames()) {
  let problems: string[];
  let count = 0;
  try {
    const objects = render(overlayDir(overlay));
    count = objects.length;
    problems = checkRendering(objects, { newestMigration: newest }).map(formatProblem);
  } catch (error) {
    problems = [errorMessage(error)];
  }
  if (problems.length === 0) console.log(`ok    k8s/overlays/${overlay}: ${count} objects valid, rules hold`);
  for (const p of problems) console.error(`FAIL  k8s/overlays/${overlay}: ${p}`);
  failed ||= problems.length > 0;
}
process.exit(failed ? 1 : 0);
