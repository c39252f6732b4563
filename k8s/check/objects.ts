// Rendered Kubernetes objects and the problems found in them.
import type { IContainer, IPodSpec } from "kubernetes-models/v1";
import { kindKeyOf, type KindKey, type KindTypes } from "./models.js";

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

export interface Problem {
  /** `Kind/namespace/name`. */
  object: string;
  /** Where in the object, JSON-pointer-like; absent for the object as a whole. */
  path?: string;
  message: string;
}

const idOf = (o: K8sObject): string => `${o.kind}/${o.metadata.namespace ?? "-"}/${o.metadata.name}`;

export const problem = (o: K8sObject, path: string | undefined, message: string): Problem => ({ object: idOf(o), path, message });

export const formatProblem = (p: Problem): string => `${p.object}${p.path ? ` ${p.path}` : ""}: ${p.message}`;

/** The objects of one kind, typed by its declaration (valid once checkSchema found nothing). */
export function ofKind<K extends KindKey>(objects: K8sObject[], key: K): (KindTypes[K] & K8sObject)[] {
  return objects.filter((o) => kindKeyOf(o) === key) as (KindTypes[K] & K8sObject)[];
}

export function find(objects: K8sObject[], kind: string, namespace: string | undefined, name: string): K8sObject | undefined {
  return objects.find((o) => o.kind === kind && o.metadata.name === name && o.metadata.namespace === namespace);
}

/** A Deployment, StatefulSet or Job, with its pod template. */
export interface Workload {
  object: K8sObject;
  /** JSON path of the pod template within the object. */
  at: string;
  labels: Record<string, string>;
  pod: IPodSpec;
}

export function workloads(objects: K8sObject[]): Workload[] {
  const all = [...ofKind(objects, "apps/v1/Deployment"), ...ofKind(objects, "apps/v1/StatefulSet"), ...ofKind(objects, "batch/v1/Job")];
  return all.flatMap((o) => {
    const template = o.spec?.template;
    return template?.spec ? [{ object: o, at: "/spec/template", labels: template.metadata?.labels ?? {}, pod: template.spec }] : [];
  });
}

export function containersOf(pod: IPodSpec): { container: IContainer; at: string }[] {
  return [
    ...(pod.initContainers ?? []).map((container, i) => ({ container, at: `/spec/initContainers/${i}` })),
    ...pod.containers.map((container, i) => ({ container, at: `/spec/containers/${i}` })),
  ];
}

/** Seckill Mesh's own image (the repository's Dockerfile), whatever registry and tag an overlay gives it. */
export function isSeckillImage(image: string | undefined): boolean {
  const repository = (image ?? "").split("@")[0].replace(/:[^/:]*$/, "");
  return repository.split("/").at(-1) === "seckill";
}

export const selects = (selector: Record<string, string> | undefined, labels: Record<string, string>): boolean =>
  selector !== undefined && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);
