// Envoy's image is the release the project pins (tools/envoy/binary.ts), the
// one the tests and the local stack run. Envoy's bootstrap, as the envoy
// Deployment mounts it: every cluster endpoint
// names a Service of Envoy's namespace (`<service>.<namespace>.svc.cluster.local`)
// on one of its ports, and every file the bootstrap reads (TLS certificate and
// key, the transcoder's descriptor) is mounted where it looks.
import { posix } from "node:path";
import type { IContainer, IPodSpec } from "kubernetes-models/v1";
import { parse } from "yaml";
import { ENVOY_IMAGE } from "../../tools/envoy/binary.js";
import { EXTERNAL_SECRETS } from "./external-secrets.js";
import { find, ofKind, problem, type K8sObject, type Problem } from "./objects.js";

interface SocketAddress {
  address?: string;
  port_value?: number;
}

export function checkEnvoy(objects: K8sObject[]): Problem[] {
  const found: Problem[] = [];
  for (const d of ofKind(objects, "apps/v1/Deployment")) {
    const pod = d.spec?.template.spec;
    const envoy = pod?.containers.find((c) => (c.image ?? "").startsWith("envoyproxy/envoy"));
    if (!pod || !envoy) continue;
    if (envoy.image !== ENVOY_IMAGE) {
      found.push(problem(d, "/spec/template/spec/containers", `Envoy's image is ${envoy.image}; the project pins ${ENVOY_IMAGE} (tools/envoy/binary.ts)`));
    }
    const ns = d.metadata.namespace;
    const files = mountedFiles(pod, envoy, ns, objects);
    const configPath = envoy.args?.[(envoy.args?.indexOf("--config-path") ?? -2) + 1] ?? envoy.args?.[(envoy.args?.indexOf("-c") ?? -2) + 1];
    const source = configPath ? files.get(configPath) : undefined;
    if (!configPath || !source?.text) {
      found.push(problem(d, "/spec/template/spec/containers", `Envoy's --config-path ${configPath ?? "(none)"} is not a mounted ConfigMap entry`));
      continue;
    }
    const bootstrap = parse(source.text) as { static_resources?: { clusters?: { name: string; load_assignment?: unknown }[] } };
    for (const cluster of bootstrap.static_resources?.clusters ?? []) {
      for (const addr of socketAddresses(cluster.load_assignment)) {
        const m = /^([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local$/.exec(addr.address ?? "");
        const where = `${source.from}: cluster ${cluster.name}`;
        if (!m) {
          found.push(problem(d, undefined, `${where}: ${addr.address} is not a Service name (<service>.<namespace>.svc.cluster.local)`));
          continue;
        }
        const [, service, namespace] = m;
        if (namespace !== ns) {
          found.push(problem(d, undefined, `${where}: ${addr.address} is in namespace ${namespace}, Envoy runs in ${ns}`));
          continue;
        }
        const svc = find(objects, "Service", ns, service) as { spec?: { ports?: { port: number }[] } } | undefined;
        if (!svc) found.push(problem(d, undefined, `${where}: no Service ${service} in the rendering`));
        else if (!(svc.spec?.ports ?? []).some((p) => p.port === addr.port_value)) {
          found.push(problem(d, undefined, `${where}: Service ${service} has no port ${addr.port_value}`));
        }
      }
    }
    for (const file of filesRead(bootstrap)) {
      if (!files.has(file)) found.push(problem(d, undefined, `${source.from}: Envoy reads ${file}, which no volume mounts`));
    }
  }
  return found;
}

function* socketAddresses(node: unknown): Generator<SocketAddress> {
  if (Array.isArray(node)) for (const n of node) yield* socketAddresses(n);
  else if (node && typeof node === "object") {
    for (const [k, v] of Object.entries(node)) {
      if (k === "socket_address") yield v as SocketAddress;
      else yield* socketAddresses(v);
    }
  }
}

/** Absolute paths of the files the bootstrap names (TLS `filename`s, the descriptor). */
function filesRead(node: unknown, out = new Set<string>()): Set<string> {
  if (Array.isArray(node)) {
    for (const n of node) filesRead(n, out);
  } else if (node && typeof node === "object") {
    for (const [k, v] of Object.entries(node)) {
      if ((k === "filename" || k === "proto_descriptor") && typeof v === "string" && v.startsWith("/")) out.add(v);
      else filesRead(v, out);
    }
  }
  return out;
}

/** Files the container sees from ConfigMaps and Secrets: path -> where from (and a ConfigMap entry's text). */
function mountedFiles(pod: IPodSpec, c: IContainer, ns: string | undefined, objects: K8sObject[]): Map<string, { from: string; text?: string }> {
  const files = new Map<string, { from: string; text?: string }>();
  const add = (dir: string, kind: "ConfigMap" | "Secret", name: string, items: { key: string; path: string }[] | undefined) => {
    const object = find(objects, kind, ns, name);
    const data = { ...((object?.data as Record<string, string>) ?? {}), ...((object?.binaryData as Record<string, string>) ?? {}) };
    const external = kind === "Secret" && !object ? EXTERNAL_SECRETS[name] : undefined;
    const keys = object ? Object.keys(data) : external && external.keys !== "any" ? external.keys : [];
    const picked = items && items.length > 0 ? items : keys.map((key) => ({ key, path: key }));
    for (const { key, path } of picked) {
      if (object && !(key in data)) continue;
      files.set(posix.join(dir, path), {
        from: `${kind} ${name} key ${key}`,
        text: kind === "ConfigMap" && object?.data ? (object.data as Record<string, string>)[key] : undefined,
      });
    }
  };
  for (const m of c.volumeMounts ?? []) {
    const v = (pod.volumes ?? []).find((vol) => vol.name === m.name);
    if (!v) continue;
    if (v.configMap) add(m.mountPath, "ConfigMap", v.configMap.name ?? "", v.configMap.items);
    if (v.secret) add(m.mountPath, "Secret", v.secret.secretName ?? "", v.secret.items);
    for (const s of v.projected?.sources ?? []) {
      if (s.configMap) add(m.mountPath, "ConfigMap", s.configMap.name ?? "", s.configMap.items);
      if (s.secret) add(m.mountPath, "Secret", s.secret.name ?? "", s.secret.items);
    }
  }
  return files;
}
