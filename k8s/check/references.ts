// Every ConfigMap, Secret, ServiceAccount and Namespace a workload or object
// names exists in the rendering (Secrets: or are documented as created by hand,
// external-secrets.ts), with the keys asked for.
import type { IPodSpec } from "kubernetes-models/v1";
import { EXTERNAL_SECRETS } from "./external-secrets.js";
import { containersOf, find, problem, workloads, type K8sObject, type Problem } from "./objects.js";

interface Ref {
  kind: "ConfigMap" | "Secret";
  name: string;
  key?: string;
  optional?: boolean;
  path: string;
}

export function checkReferences(objects: K8sObject[]): Problem[] {
  const found: Problem[] = [];
  const namespaces = new Set(objects.filter((o) => o.kind === "Namespace").map((o) => o.metadata.name));
  for (const o of objects) {
    const ns = o.metadata.namespace;
    if (o.kind !== "Namespace" && (ns === undefined || !namespaces.has(ns))) {
      found.push(problem(o, "/metadata/namespace", `namespace ${ns ?? "(none)"} is not created by this rendering`));
    }
  }
  for (const w of workloads(objects)) {
    const ns = w.object.metadata.namespace;
    const sa = w.pod.serviceAccountName;
    if (!sa) found.push(problem(w.object, `${w.at}/spec/serviceAccountName`, "needs a ServiceAccount of its own (not the namespace's default)"));
    else if (!find(objects, "ServiceAccount", ns, sa)) found.push(problem(w.object, `${w.at}/spec/serviceAccountName`, `ServiceAccount ${sa} is not in the rendering`));
    for (const ref of referencesOf(w.pod)) {
      const path = `${w.at}${ref.path}`;
      const target = find(objects, ref.kind, ns, ref.name);
      if (target) {
        const keys = Object.keys({ ...((target.data as object) ?? {}), ...((target.binaryData as object) ?? {}), ...((target.stringData as object) ?? {}) });
        if (ref.key !== undefined && !keys.includes(ref.key) && !ref.optional) found.push(problem(w.object, path, `${ref.kind} ${ref.name} has no key ${ref.key}`));
        continue;
      }
      const external = ref.kind === "Secret" ? EXTERNAL_SECRETS[ref.name] : undefined;
      if (!external) {
        if (!ref.optional) {
          found.push(
            problem(
              w.object,
              path,
              `${ref.kind} ${ref.name} is not in the rendering${ref.kind === "Secret" ? " nor a documented external Secret (k8s/check/external-secrets.ts)" : ""}`,
            ),
          );
        }
      } else if (ref.key !== undefined && external.keys !== "any" && !external.keys.includes(ref.key)) {
        found.push(problem(w.object, path, `Secret ${ref.name} is documented with the keys ${external.keys.join(", ")}, not ${ref.key}`));
      }
    }
  }
  return found;
}

function referencesOf(pod: IPodSpec): Ref[] {
  const refs: Ref[] = [];
  for (const { container, at } of containersOf(pod)) {
    (container.envFrom ?? []).forEach((from, i) => {
      if (from.configMapRef) refs.push({ kind: "ConfigMap", name: from.configMapRef.name ?? "", optional: from.configMapRef.optional, path: `${at}/envFrom/${i}` });
      if (from.secretRef) refs.push({ kind: "Secret", name: from.secretRef.name ?? "", optional: from.secretRef.optional, path: `${at}/envFrom/${i}` });
    });
    (container.env ?? []).forEach((e, i) => {
      const cm = e.valueFrom?.configMapKeyRef;
      const secret = e.valueFrom?.secretKeyRef;
      if (cm) refs.push({ kind: "ConfigMap", name: cm.name ?? "", key: cm.key, optional: cm.optional, path: `${at}/env/${i}` });
      if (secret) refs.push({ kind: "Secret", name: secret.name ?? "", key: secret.key, optional: secret.optional, path: `${at}/env/${i}` });
    });
  }
  (pod.volumes ?? []).forEach((v, i) => {
    const at = `/spec/volumes/${i}`;
    if (v.configMap) for (const key of keysOf(v.configMap.items)) refs.push({ kind: "ConfigMap", name: v.configMap.name ?? "", key, optional: v.configMap.optional, path: at });
    if (v.secret) for (const key of keysOf(v.secret.items)) refs.push({ kind: "Secret", name: v.secret.secretName ?? "", key, optional: v.secret.optional, path: at });
    (v.projected?.sources ?? []).forEach((s, j) => {
      const sat = `${at}/projected/sources/${j}`;
      if (s.configMap) for (const key of keysOf(s.configMap.items)) refs.push({ kind: "ConfigMap", name: s.configMap.name ?? "", key, optional: s.configMap.optional, path: sat });
      if (s.secret) for (const key of keysOf(s.secret.items)) refs.push({ kind: "Secret", name: s.secret.name ?? "", key, optional: s.secret.optional, path: sat });
    });
  });
  return refs;
}

/** The keys a volume picks, or one undefined key for "all of them". */
const keysOf = (items: { key: string }[] | undefined): (string | undefined)[] => (items && items.length > 0 ? items.map((i) => i.key) : [undefined]);
