// The migration Job's name ends with the newest migration's id, so a release
// with a new migration brings a new Job (a Job's template cannot change).
import { ofKind, problem, type K8sObject, type Problem } from "./objects.js";

export function checkMigrationJob(objects: K8sObject[], newestMigration: string): Problem[] {
  const jobs = ofKind(objects, "batch/v1/Job").filter((j) => j.metadata.labels?.["app.kubernetes.io/name"] === "migrate");
  if (jobs.length === 0) return [{ object: "Job/migrate", message: "no migration Job (label app.kubernetes.io/name=migrate) in the rendering" }];
  return jobs.flatMap((j) =>
    j.metadata.name === `migrate-${newestMigration}`
      ? []
      : [problem(j, "/metadata/name", `must be migrate-${newestMigration} (the id of the newest migration): set nameSuffix in k8s/base/migrate/kustomization.yaml`)],
  );
}
