// Where the edge listens and where its upstreams are, for the two variants of
// the Envoy bootstrap: "local" (npm start's loopback ports) and "production"
// (Kubernetes Service names, every service on its standard port).

import { LOCAL_LIMITS, PRODUCTION_LIMITS, type EdgeLimits } from "./limits.js";

export type Variant = "local" | "production";

export interface HostPort {
  host: string;
  port: number;
}

/** The upstream clusters of the edge. */
export const CLUSTER_NAMES = ["order_flash", "inventory_flash", "order_default", "inventory_default", "gateway", "gateway_jwks"] as const;
export type ClusterName = (typeof CLUSTER_NAMES)[number];

/**
 * The gateway's RateLimitService has a cluster of its own on the gateway's
 * address, so its own HTTP/2 connections: Envoy resets every rate limit call
 * that outlives the filter's timeout, and after about a thousand resets the
 * gateway's HTTP/2 stack (nghttp2's reset-flood protection) answers with
 * GOAWAY, refusing the streams in flight on that connection. On a connection
 * of their own those are rate limit calls only (which fail open), never a
 * buyer's IssuePurchaseToken.
 */
export const RATE_LIMIT_CLUSTER = "gateway_ratelimit";
/** Every cluster of the bootstrap: the upstreams of the topology and the rate limit service's. */
export type BootstrapCluster = ClusterName | typeof RATE_LIMIT_CLUSTER;
export const BOOTSTRAP_CLUSTERS: readonly BootstrapCluster[] = [...CLUSTER_NAMES, RATE_LIMIT_CLUSTER];
/** The upstream a bootstrap cluster points at. */
export const upstreamOf = (name: BootstrapCluster): ClusterName => (name === RATE_LIMIT_CLUSTER ? "gateway" : name);

/** The clusters spoken to over gRPC (HTTP/2); gateway_jwks is plain HTTP/1.1. */
export const GRPC_CLUSTERS: readonly BootstrapCluster[] = ["order_flash", "inventory_flash", "order_default", "inventory_default", "gateway", RATE_LIMIT_CLUSTER];

export interface Topology {
  variant: Variant;
  listener: HostPort;
  admin: HostPort;
  /**
   * TLS on the listener: certificate chain and key files, and the CA that signs
   * the clients' certificates (mutual TLS: only BFFs and the CDN holding one may
   * call, since the edge trusts the x-user-id they send). Absent: h2c (cleartext HTTP/2).
   */
  tls?: { certificateChain: string; privateKey: string; clientCa: string };
  /** The descriptor set read by the JSON transcoder (envoy/seckill.pb), as Envoy finds it. */
  protoDescriptor: string;
  /** "STATIC" for IP addresses, "STRICT_DNS" for names resolved by DNS. */
  discovery: "STATIC" | "STRICT_DNS";
  clusters: Record<ClusterName, HostPort>;
  limits: EdgeLimits;
  /** An OTLP/HTTP collector for the edge's spans: with one, Envoy starts or continues every request's trace (tracing.ts). */
  otlpCollector?: HostPort;
}

const loopback = (port: number): HostPort => ({ host: "127.0.0.1", port });

/** npm start: every process on 127.0.0.1, Envoy on h2c 8080. */
export const LOCAL_TOPOLOGY: Topology = {
  variant: "local",
  listener: loopback(8080),
  admin: loopback(9901),
  // Relative to the working directory: run `envoy -c envoy/envoy.local.yaml` from the repository root.
  protoDescriptor: "envoy/seckill.pb",
  discovery: "STATIC",
  clusters: {
    inventory_default: loopback(50051),
    order_default: loopback(50052),
    gateway: loopback(50054),
    inventory_flash: loopback(50055),
    order_flash: loopback(50056),
    gateway_jwks: loopback(50058),
  },
  limits: LOCAL_LIMITS,
};

/** The Kubernetes name of a Service in the seckill namespace. */
export const k8sService = (name: string, port: number): HostPort => ({ host: `${name}.seckill.svc.cluster.local`, port });

const TLS_DIR = "/etc/envoy/tls";

/** Kubernetes: TLS on 8443, the group in the Service name, standard ports. */
export const PRODUCTION_TOPOLOGY: Topology = {
  variant: "production",
  listener: { host: "0.0.0.0", port: 8443 },
  admin: loopback(9901),
  tls: { certificateChain: `${TLS_DIR}/tls.crt`, privateKey: `${TLS_DIR}/tls.key`, clientCa: `${TLS_DIR}/ca.crt` },
  protoDescriptor: "/etc/envoy/seckill.pb",
  discovery: "STRICT_DNS",
  clusters: {
    inventory_default: k8sService("inventory-default", 50051),
    order_default: k8sService("order-default", 50052),
    inventory_flash: k8sService("inventory-flash", 50051),
    order_flash: k8sService("order-flash", 50052),
    gateway: k8sService("gateway", 50054),
    gateway_jwks: k8sService("gateway", 50058),
  },
  limits: PRODUCTION_LIMITS,
};

export const TOPOLOGIES: Record<Variant, Topology> = { local: LOCAL_TOPOLOGY, production: PRODUCTION_TOPOLOGY };

/** The generated file of each variant, relative to the repository root. */
export const OUTPUT_FILES: Record<Variant, string> = { local: "envoy/envoy.local.yaml", production: "envoy/envoy.yaml" };
