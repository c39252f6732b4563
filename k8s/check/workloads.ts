// The rules every workload follows: probes, requests and limits, a locked-down
// security context, a valid configuration for Seckill Mesh's processes, a
// termination grace above their drain, a PodDisruptionBudget, autoscalers that
// target something.
import type { IContainer, IPodSecurityContext, IProbe } from "kubernetes-models/v1";
import { ConfigError, readConfig } from "../../services/common/config.js";
import { containersOf, find, isSeckillImage, ofKind, problem, selects, workloads, type K8sObject, type Problem, type Workload } from "./objects.js";

const PROBES = ["startupProbe", "readinessProbe", "livenessProbe"] as const;

export function checkWorkloads(objects: K8sObject[]): Problem[] {
  return workloads(objects).flatMap((w) => [
    ...(w.pod.automountServiceAccountToken === false
      ? []
      : [problem(w.object, `${w.at}/spec/automountServiceAccountToken`, "must be false: no workload talks to the Kubernetes API")]),
    ...containersOf(w.pod).flatMap(({ container, at }) => checkContainer(w, container, `${w.at}${at}`, objects)),
  ]);
}

function checkContainer(w: Workload, c: IContainer, at: string, objects: K8sObject[]): Problem[] {
  const found: Problem[] = [];
  const fail = (path: string, message: string) => found.push(problem(w.object, `${at}${path}`, `container ${c.name}: ${message}`));

  if (w.object.kind !== "Job") {
    for (const p of PROBES) if (!c[p]) fail(`/${p}`, `has no ${p}`);
    if (isSeckillImage(c.image)) checkGrpcProbes(c, fail);
  }
  for (const side of ["requests", "limits"] as const) {
    for (const resource of ["cpu", "memory"]) {
      if (c.resources?.[side]?.[resource] === undefined) fail(`/resources/${side}/${resource}`, `has no ${resource} ${side === "requests" ? "request" : "limit"}`);
    }
  }
  checkSecurity(w.pod.securityContext, c, fail);
  if (isSeckillImage(c.image)) checkServiceConfig(w, c, objects, fail);
  return found;
}

/** Seckill Mesh's servers answer grpc.health.v1: the kubelet asks it directly, on a port the container declares. */
function checkGrpcProbes(c: IContainer, fail: (path: string, message: string) => void): void {
  const ports = new Set((c.ports ?? []).map((p) => p.containerPort));
  for (const p of PROBES) {
    const probe: IProbe | undefined = c[p];
    if (!probe) continue;
    if (!probe.grpc) fail(`/${p}`, `${p} must be a native gRPC probe (grpc.health.v1)`);
    else if (!ports.has(probe.grpc.port)) fail(`/${p}/grpc/port`, `${p} asks port ${probe.grpc.port}, which the container does not declare`);
  }
}

function checkSecurity(pod: IPodSecurityContext | undefined, c: IContainer, fail: (path: string, message: string) => void): void {
  const sc = c.securityContext ?? {};
  const runAsNonRoot = sc.runAsNonRoot ?? pod?.runAsNonRoot;
  const runAsUser = sc.runAsUser ?? pod?.runAsUser;
  if (runAsNonRoot !== true) fail("/securityContext/runAsNonRoot", "must run as non-root (runAsNonRoot: true, here or in the pod)");
  if (runAsUser === undefined || runAsUser === 0) fail("/securityContext/runAsUser", `must run as a non-root uid, not ${runAsUser ?? "the image's user"}`);
  if (sc.readOnlyRootFilesystem !== true) fail("/securityContext/readOnlyRootFilesystem", "the root file system must be read-only");
  if (sc.allowPrivilegeEscalation !== false) fail("/securityContext/allowPrivilegeEscalation", "must be false");
  if (!sc.capabilities?.drop?.includes("ALL")) fail("/securityContext/capabilities/drop", "must drop ALL capabilities");
  if ((sc.seccompProfile ?? pod?.seccompProfile)?.type !== "RuntimeDefault") fail("/securityContext/seccompProfile", "needs seccompProfile RuntimeDefault (here or in the pod)");
}

/** The environment a Seckill Mesh container starts with must pass readConfig, and its drain must fit in the pod's grace. */
function checkServiceConfig(w: Workload, c: IContainer, objects: K8sObject[], fail: (path: string, message: string) => void): void {
  const env = environmentOf(c, w.object.metadata.namespace, objects);
  try {
    const config = readConfig(env);
    const drainMs = config.drainDelayMs + config.shutdownGraceMs;
    const graceS = w.pod.terminationGracePeriodSeconds ?? 30;
    if (w.object.kind !== "Job" && graceS * 1000 <= drainMs) {
      fail(
        "/terminationGracePeriodSeconds",
        `terminationGracePeriodSeconds ${graceS} s must exceed SHUTDOWN_DRAIN_DELAY_MS + SHUTDOWN_GRACE_MS = ${drainMs} ms, or the kubelet kills calls still draining`,
      );
    }
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    fail("/env", `invalid configuration: ${error.problems.join("; ")}`);
  }
}

/** The container's literal environment: env values and ConfigMap entries (Secret values are unknown here and left to defaults). */
function environmentOf(c: IContainer, namespace: string | undefined, objects: K8sObject[]): Record<string, string> {
  const env: Record<string, string> = {};
  const configMap = (name: string) => (find(objects, "ConfigMap", namespace, name)?.data ?? {}) as Record<string, string>;
  for (const from of c.envFrom ?? []) {
    if (from.configMapRef) Object.assign(env, configMap(from.configMapRef.name ?? ""));
  }
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    const ref = e.valueFrom?.configMapKeyRef;
    if (ref) {
      const value = configMap(ref.name ?? "")[ref.key];
      if (value !== undefined) env[e.name] = value;
    }
  }
  return env;
}

export function checkDisruptionBudgets(objects: K8sObject[]): Problem[] {
  const budgets = ofKind(objects, "policy/v1/PodDisruptionBudget");
  return [...ofKind(objects, "apps/v1/Deployment"), ...ofKind(objects, "apps/v1/StatefulSet")].flatMap((d) => {
    const labels = d.spec?.template.metadata?.labels ?? {};
    const covered = budgets.some((b) => b.metadata.namespace === d.metadata.namespace && selects(b.spec?.selector?.matchLabels, labels));
    return covered ? [] : [problem(d, undefined, "no PodDisruptionBudget selects its pods")];
  });
}

export function checkAutoscalers(objects: K8sObject[]): Problem[] {
  return ofKind(objects, "autoscaling/v2/HorizontalPodAutoscaler").flatMap((h) => {
    const ref = h.spec?.scaleTargetRef;
    const target = ref && ref.kind === "Deployment" ? find(objects, "Deployment", h.metadata.namespace, ref.name) : undefined;
    if (!target) return [problem(h, "/spec/scaleTargetRef", `targets ${ref?.kind}/${ref?.name}, which is not a Deployment in the rendering`)];
    if ((target.spec as { replicas?: number } | undefined)?.replicas !== undefined) {
      return [problem(target, "/spec/replicas", `set, but ${h.kind}/${h.metadata.name} owns the replica count: every apply would undo its scaling`)];
    }
    return [];
  });
}
