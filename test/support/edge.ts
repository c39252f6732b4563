// A real Envoy for one test file: the edge's bootstrap built by envoy/src from
// the local topology, with the upstream clusters and limits the test chooses,
// on ports chosen by the OS, admin on loopback. Envoy's binary is the one the
// project installs (test/support/envoy.ts).
import { resolve } from "node:path";
import { buildBootstrap } from "../../envoy/src/bootstrap.js";
import type { EdgeLimits } from "../../envoy/src/limits.js";
import { LOCAL_LIMITS } from "../../envoy/src/limits.js";
import { LOCAL_TOPOLOGY, type ClusterName, type HostPort, type Topology } from "../../envoy/src/topology.js";
import { runEnvoy, type RunningEnvoy } from "../../tools/envoy/run.js";
import { freePorts } from "../../tools/stack/ports.js";
import type { TestStack } from "./stack.js";

export const loopback = (port: number): HostPort => ({ host: "127.0.0.1", port });

const portOf = (address: string) => Number(address.slice(address.lastIndexOf(":") + 1));

/**
 * Every cluster pointed at a test stack: both RPC groups of a service are its
 * one process, and the gateway's clusters are there when the stack runs one.
 */
export function stackClusters(stack: TestStack): Partial<Record<ClusterName, HostPort>> {
  const gateway = stack.gateway;
  return {
    order_flash: loopback(stack.order.port),
    order_default: loopback(stack.order.port),
    inventory_flash: loopback(stack.inventory.port),
    inventory_default: loopback(stack.inventory.port),
    ...(gateway ? { gateway: loopback(portOf(gateway.address)), gateway_jwks: loopback(portOf(gateway.access!.jwks.address)) } : {}),
  };
}

export interface EdgeOptions {
  /** Every cluster's upstream; a cluster left out points at a closed port. */
  clusters: Partial<Record<ClusterName, HostPort>>;
  limits?: Partial<EdgeLimits>;
  /** An OTLP/HTTP collector for Envoy's spans: Envoy then starts or continues each request's trace. */
  otlpCollector?: HostPort;
  /** Edits the built bootstrap before it is written (for a config Envoy must refuse, say). */
  edit?: (bootstrap: ReturnType<typeof buildBootstrap>) => unknown;
}

export interface Edge extends RunningEnvoy {
  /** "127.0.0.1:<port>": where clients dial the edge. */
  address: string;
  port: number;
  adminPort: number;
}

export async function startEdge(bin: string, options: EdgeOptions): Promise<Edge> {
  const [port, adminPort, closedPort] = await freePorts(3);
  const clusters = Object.fromEntries((Object.keys(LOCAL_TOPOLOGY.clusters) as ClusterName[]).map((name) => [name, options.clusters[name] ?? loopback(closedPort)])) as Record<
    ClusterName,
    HostPort
  >;
  const topology: Topology = {
    ...LOCAL_TOPOLOGY,
    protoDescriptor: resolve(import.meta.dirname, "../../envoy/seckill.pb"),
    listener: loopback(port),
    admin: loopback(adminPort),
    clusters,
    limits: { ...LOCAL_LIMITS, ...options.limits },
    otlpCollector: options.otlpCollector,
  };
  const bootstrap = buildBootstrap(topology);
  const envoy = await runEnvoy(bin, options.edit?.(bootstrap) ?? bootstrap, { adminPort });
  return Object.assign(envoy, { address: `127.0.0.1:${port}`, port, adminPort });
}
