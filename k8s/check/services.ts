// Every Service selects the pods of some workload in its namespace, and each
// of its ports reaches a port those pods declare.
import { ofKind, problem, selects, workloads, type K8sObject, type Problem } from "./objects.js";

export function checkServices(objects: K8sObject[]): Problem[] {
  const pods = workloads(objects).filter((w) => w.object.kind !== "Job");
  return ofKind(objects, "v1/Service").flatMap((s) => {
    const selector = s.spec?.selector;
    const selected = pods.filter((w) => w.object.metadata.namespace === s.metadata.namespace && selects(selector, w.labels));
    if (selected.length === 0) {
      return [problem(s, "/spec/selector", `selects no pods of any workload in the rendering (${JSON.stringify(selector ?? {})})`)];
    }
    return (s.spec?.ports ?? []).flatMap((p, i) => {
      const target = p.targetPort ?? p.port;
      const missing = selected.filter(
        (w) => !w.pod.containers.some((c) => (c.ports ?? []).some((cp) => (typeof target === "string" ? cp.name === target : cp.containerPort === target))),
      );
      return missing.map((w) => problem(s, `/spec/ports/${i}`, `targetPort ${target} is not a port of ${w.object.kind}/${w.object.metadata.name}'s containers`));
    });
  });
}
