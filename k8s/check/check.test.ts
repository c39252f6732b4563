import { beforeAll, describe, expect, it } from "vitest";
import { GENERATED_FILES, staleFiles } from "./generated-files.js";
import { checkRendering, formatProblem, type K8sObject } from "./index.js";
import { newestMigrationId } from "./newest-migration.js";
import { overlayDir, overlayNames, render } from "./render.js";

let newest: string;
const rendered = new Map<string, K8sObject[]>();

beforeAll(async () => {
  newest = await newestMigrationId();
  for (const overlay of overlayNames()) rendered.set(overlay, render(overlayDir(overlay)));
});

const problemsOf = (objects: K8sObject[]) => checkRendering(objects, { newestMigration: newest }).map(formatProblem);

/** A copy of the dev rendering with one change made by `edit`. */
function devWith(edit: (objects: K8sObject[]) => void): K8sObject[] {
  const objects = structuredClone(rendered.get("dev")!);
  edit(objects);
  return objects;
}

// biome-ignore lint/suspicious/noExplicitAny: a rendered object, edited freely to break one check at a time
type Edited = any;

const named = (objects: K8sObject[], kind: string, name: string): Edited => {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`${kind}/${name} not rendered`);
  return found;
};

const container = (objects: K8sObject[], deployment: string) => named(objects, "Deployment", deployment).spec.template.spec.containers[0];

describe("the rendered overlays", () => {
  it("are dev, dev with a NATS cluster, prod and the two regional units", () => {
    expect(overlayNames()).toEqual(["dev", "dev-cluster", "prod", "region-a", "region-b"]);
  });

  it.each(["dev", "dev-cluster", "prod", "region-a", "region-b"])("%s passes every check", (overlay) => {
    expect(problemsOf(rendered.get(overlay)!)).toEqual([]);
  });

  it("keeps JetStream streams on three nodes where NATS is a cluster, and fsyncs every write on the in-cluster one", () => {
    // The generated ConfigMap's name ends with a hash of its data.
    const config = (overlay: string) => rendered.get(overlay)!.find((o) => o.kind === "ConfigMap" && o.metadata.name.startsWith("seckill-config-")) as Edited;
    const replicas = (overlay: string) => config(overlay).data.JETSTREAM_REPLICAS;
    expect(replicas("dev")).toBeUndefined();
    for (const overlay of ["dev-cluster", "prod", "region-a", "region-b"]) expect(replicas(overlay)).toBe("3");
    const nats = named(rendered.get("dev-cluster")!, "StatefulSet", "nats");
    expect(nats.spec.replicas).toBe(3);
    expect(nats.spec.volumeClaimTemplates).toHaveLength(1);
    const conf = named(rendered.get("dev-cluster")!, "ConfigMap", "nats-cluster-config").data["nats.conf"];
    expect(conf).toMatch(/sync_interval: always/);
    for (const pod of ["nats-0", "nats-1", "nats-2"]) expect(conf).toContain(`nats://${pod}.${nats.spec.serviceName}:6222`);
  });

  it("each regional unit runs in its own namespace, Envoy's upstreams in it", () => {
    for (const region of ["region-a", "region-b"]) {
      const objects = rendered.get(region)!;
      expect(new Set(objects.map((o) => o.metadata.namespace ?? o.metadata.name))).toEqual(new Set([`seckill-${region}`]));
      const envoyConfig = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name.startsWith("envoy-config"))!;
      const bootstrap = (envoyConfig.data as Record<string, string>)["envoy.yaml"];
      expect(bootstrap).toContain(`order-flash.seckill-${region}.svc.cluster.local`);
      expect(bootstrap).not.toContain(".seckill.svc.");
    }
  });

  it("the copies under generated/ are current", () => {
    expect(staleFiles()).toEqual([]);
    expect(staleFiles([{ path: GENERATED_FILES[0].path, content: () => Buffer.from("# edited by hand\n") }])).toEqual([GENERATED_FILES[0].path]);
  });
});

describe("a mistake in the manifests fails with a message naming it", () => {
  it("a container without a readiness probe", () => {
    const objects = devWith((o) => delete container(o, "order-flash").readinessProbe);
    expect(problemsOf(objects)).toEqual(["Deployment/seckill/order-flash /spec/template/spec/containers/0/readinessProbe: container order: has no readinessProbe"]);
  });

  it("a service probed over HTTP instead of grpc.health.v1, or on a port it does not open", () => {
    const objects = devWith((o) => {
      container(o, "inventory-default").livenessProbe = { tcpSocket: { port: 50051 } };
      container(o, "order-default").startupProbe.grpc.port = 50099;
    });
    expect(problemsOf(objects)).toEqual([
      "Deployment/seckill/inventory-default /spec/template/spec/containers/0/livenessProbe: container inventory: livenessProbe must be a native gRPC probe (grpc.health.v1)",
      "Deployment/seckill/order-default /spec/template/spec/containers/0/startupProbe/grpc/port: container order: startupProbe asks port 50099, which the container does not declare",
    ]);
  });

  it("a container running as root", () => {
    const objects = devWith((o) => {
      const pod = named(o, "Deployment", "gateway").spec.template.spec;
      pod.securityContext.runAsNonRoot = false;
      pod.securityContext.runAsUser = 0;
    });
    expect(problemsOf(objects)).toEqual([
      "Deployment/seckill/gateway /spec/template/spec/containers/0/securityContext/runAsNonRoot: container gateway: must run as non-root (runAsNonRoot: true, here or in the pod)",
      "Deployment/seckill/gateway /spec/template/spec/containers/0/securityContext/runAsUser: container gateway: must run as a non-root uid, not 0",
    ]);
  });

  it("a writable root file system, kept capabilities, no limits", () => {
    const objects = devWith((o) => {
      const c = container(o, "order-writer");
      c.securityContext.readOnlyRootFilesystem = false;
      c.securityContext.capabilities.drop = ["NET_RAW"];
      delete c.resources.limits.memory;
    });
    expect(problemsOf(objects)).toEqual([
      "Deployment/seckill/order-writer /spec/template/spec/containers/0/resources/limits/memory: container order-writer: has no memory limit",
      "Deployment/seckill/order-writer /spec/template/spec/containers/0/securityContext/readOnlyRootFilesystem: container order-writer: the root file system must be read-only",
      "Deployment/seckill/order-writer /spec/template/spec/containers/0/securityContext/capabilities/drop: container order-writer: must drop ALL capabilities",
    ]);
  });

  it("a termination grace shorter than the drain, and a configuration the service refuses", () => {
    const objects = devWith((o) => {
      named(o, "Deployment", "order-default").spec.template.spec.terminationGracePeriodSeconds = 20;
      container(o, "inventory-flash").env.push({ name: "SHUTDOWN_GRACE_MS", value: "soon" });
    });
    expect(problemsOf(objects)).toEqual([
      'Deployment/seckill/inventory-flash /spec/template/spec/containers/0/env: container inventory: invalid configuration: SHUTDOWN_GRACE_MS="soon": expected a whole number from 0 to 300000',
      "Deployment/seckill/order-default /spec/template/spec/containers/0/terminationGracePeriodSeconds: container order: terminationGracePeriodSeconds 20 s must exceed SHUTDOWN_DRAIN_DELAY_MS + SHUTDOWN_GRACE_MS = 30000 ms, or the kubelet kills calls still draining",
    ]);
  });

  it("a Service that selects nothing", () => {
    const objects = devWith((o) => (named(o, "Service", "order-writer").spec.selector = { "app.kubernetes.io/name": "order-writter" }));
    expect(problemsOf(objects)).toEqual([
      'Service/seckill/order-writer /spec/selector: selects no pods of any workload in the rendering ({"app.kubernetes.io/name":"order-writter"})',
    ]);
  });

  it("a Secret referenced but neither rendered nor documented", () => {
    const objects = devWith((o) => (container(o, "order-default").env.find((e: Edited) => e.name === "REDIS_URL").valueFrom.secretKeyRef.name = "redis-password"));
    expect(problemsOf(objects)).toEqual([
      expect.stringMatching(
        /^Deployment\/seckill\/order-default \/spec\/template\/spec\/containers\/0\/env\/\d+: Secret redis-password is not in the rendering nor a documented external Secret/,
      ),
    ]);
  });

  it("a documented Secret asked for a key it does not have, and a missing ConfigMap", () => {
    const objects = devWith((o) => {
      named(o, "Deployment", "envoy").spec.template.spec.volumes.find((v: Edited) => v.name === "envoy-config").projected.sources[2].secret.items[0].key = "cert.pem";
      container(o, "order-writer").envFrom[0].configMapRef.name = "seckill-settings";
    });
    const problems = problemsOf(objects);
    expect(problems).toContain("Deployment/seckill/order-writer /spec/template/spec/containers/0/envFrom/0: ConfigMap seckill-settings is not in the rendering");
    expect(problems).toContain(
      "Deployment/seckill/envoy /spec/template/spec/volumes/1/projected/sources/2: Secret envoy-tls is documented with the keys tls.crt, tls.key, not cert.pem",
    );
  });

  it("an Envoy image other than the pinned release", () => {
    const objects = devWith((o) => (container(o, "envoy").image = "envoyproxy/envoy:v1.31.2"));
    expect(problemsOf(objects)).toEqual([
      "Deployment/seckill/envoy /spec/template/spec/containers: Envoy's image is envoyproxy/envoy:v1.31.2; the project pins envoyproxy/envoy:v1.40.0 (tools/envoy/binary.ts)",
    ]);
  });

  it("an Envoy cluster whose Service is missing, or on another port", () => {
    const withoutService = devWith((o) => o.splice(o.indexOf(named(o, "Service", "order-flash")), 1));
    expect(problemsOf(withoutService)).toEqual([
      expect.stringMatching(/^Deployment\/seckill\/envoy: ConfigMap envoy-config-\w+ key envoy\.yaml: cluster order_flash: no Service order-flash in the rendering$/),
    ]);
    const otherPort = devWith((o) => (named(o, "Service", "gateway").spec.ports[1].port = 8080));
    expect(problemsOf(otherPort)).toEqual([expect.stringMatching(/cluster gateway_jwks: Service gateway has no port 50058$/)]);
  });

  it("a Deployment without a PodDisruptionBudget, an autoscaler without its Deployment", () => {
    const objects = devWith((o) => {
      o.splice(o.indexOf(named(o, "PodDisruptionBudget", "order-writer")), 1);
      named(o, "HorizontalPodAutoscaler", "envoy").spec.scaleTargetRef.name = "edge";
    });
    expect(problemsOf(objects)).toEqual([
      "Deployment/seckill/order-writer: no PodDisruptionBudget selects its pods",
      "HorizontalPodAutoscaler/seckill/envoy /spec/scaleTargetRef: targets Deployment/edge, which is not a Deployment in the rendering",
    ]);
  });

  it("replicas on a Deployment its autoscaler owns", () => {
    const objects = devWith((o) => (named(o, "Deployment", "order-flash").spec.replicas = 3));
    expect(problemsOf(objects)).toEqual([
      "Deployment/seckill/order-flash /spec/replicas: set, but HorizontalPodAutoscaler/order-flash owns the replica count: every apply would undo its scaling",
    ]);
  });

  it("a schema error: an unknown field, a wrong type, an unknown kind", () => {
    const objects = devWith((o) => {
      const c = container(o, "inventory-flash");
      c.readinesProbe = c.readinessProbe;
      c.ports[0].containerPort = "50051";
      o.push({ apiVersion: "v1", kind: "Pod", metadata: { name: "debug", namespace: "seckill" } });
    });
    expect(problemsOf(objects)).toEqual([
      "Deployment/seckill/inventory-flash /spec/template/spec/containers/0/ports/0/containerPort: schema: must be integer",
      "Deployment/seckill/inventory-flash /spec/template/spec/containers/0/readinesProbe: schema: unknown field",
      "Pod/seckill/debug: no schema for v1/Pod: use a kind listed in k8s/check/models.ts",
    ]);
  });

  it("a migration Job not named after the newest migration", () => {
    const objects = devWith((o) => (named(o, "Job", `migrate-${newest}`).metadata.name = "migrate-20200101000000"));
    expect(problemsOf(objects)).toEqual([
      `Job/seckill/migrate-20200101000000 /metadata/name: must be migrate-${newest} (the id of the newest migration): set nameSuffix in k8s/base/migrate/kustomization.yaml`,
    ]);
  });

  it("an object outside the rendered namespaces", () => {
    const objects = devWith((o) => (named(o, "ServiceAccount", "redis").metadata.namespace = "default"));
    const problems = problemsOf(objects);
    expect(problems).toContain("ServiceAccount/default/redis /metadata/namespace: namespace default is not created by this rendering");
    expect(problems).toContain("Deployment/seckill/redis /spec/template/spec/serviceAccountName: ServiceAccount redis is not in the rendering");
  });

  it("a kustomization kubectl cannot build", () => {
    expect(() => render(overlayDir("no-such-overlay"))).toThrow(/kubectl kustomize .*no-such-overlay failed/);
  });
});
