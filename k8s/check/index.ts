// All checks of one rendering (schema first: the rules read the objects by their declared types).
import { checkEnvoy } from "./envoy-upstreams.js";
import { checkMigrationJob } from "./migration-job.js";
import type { K8sObject, Problem } from "./objects.js";
import { checkReferences } from "./references.js";
import { checkSchema } from "./schema.js";
import { checkServices } from "./services.js";
import { checkAutoscalers, checkDisruptionBudgets, checkWorkloads } from "./workloads.js";

export function checkRendering(objects: K8sObject[], opts: { newestMigration: string }): Problem[] {
  const schema = checkSchema(objects);
  if (schema.length > 0) return schema;
  return [
    ...checkWorkloads(objects),
    ...checkDisruptionBudgets(objects),
    ...checkAutoscalers(objects),
    ...checkServices(objects),
    ...checkReferences(objects),
    ...checkEnvoy(objects),
    ...checkMigrationJob(objects, opts.newestMigration),
  ];
}

export { formatProblem, type K8sObject, type Problem } from "./objects.js";
