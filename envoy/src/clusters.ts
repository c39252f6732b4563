// The upstream clusters: the four service clusters and the gateway over gRPC
// (HTTP/2, gRPC health checks, outlier detection) — the gateway twice, its
// RateLimitService on connections of its own (topology.ts, RATE_LIMIT_CLUSTER)
// — and the gateway's JWKS over HTTP/1.1; every one behind circuit breakers.

import { duration } from "./limits.js";
import { TYPE } from "./routes.js";
import { BOOTSTRAP_CLUSTERS, GRPC_CLUSTERS, upstreamOf, type BootstrapCluster, type Topology } from "./topology.js";

const HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

function protocolOptions(t: Topology, grpc: boolean) {
  const l = t.limits;
  const explicit = grpc
    ? {
        http2_protocol_options: {
          max_concurrent_streams: l.upstreamMaxConcurrentStreams,
          initial_stream_window_size: 1024 * 1024,
          initial_connection_window_size: 4 * 1024 * 1024,
          connection_keepalive: { interval: "30s", timeout: "5s" },
        },
      }
    : { http_protocol_options: {} };
  return {
    [HTTP_OPTIONS]: {
      "@type": TYPE(HTTP_OPTIONS),
      common_http_protocol_options: { idle_timeout: "300s" },
      explicit_http_config: explicit,
    },
  };
}

function cluster(t: Topology, name: BootstrapCluster) {
  const l = t.limits;
  const grpc = GRPC_CLUSTERS.includes(name);
  const { host, port } = t.clusters[upstreamOf(name)];
  const c: Record<string, unknown> = {
    name,
    type: t.discovery,
    ...(t.discovery === "STRICT_DNS" ? { dns_lookup_family: "V4_ONLY" } : {}),
    connect_timeout: duration(l.upstreamConnectTimeoutMs),
    lb_policy: "ROUND_ROBIN",
    load_assignment: {
      cluster_name: name,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: host, port_value: port } } } }] }],
    },
    typed_extension_protocol_options: protocolOptions(t, grpc),
    circuit_breakers: {
      thresholds: [
        {
          priority: "DEFAULT",
          max_connections: l.upstreamMaxConnections,
          max_pending_requests: l.upstreamMaxPendingRequests,
          max_requests: l.upstreamMaxRequests,
          max_retries: l.upstreamMaxRetries,
        },
      ],
    },
  };
  if (grpc) {
    c.health_checks = [
      {
        timeout: "1s",
        interval: "5s",
        no_traffic_interval: "5s",
        unhealthy_threshold: 2,
        healthy_threshold: 1,
        grpc_health_check: { service_name: "" },
      },
    ];
    // Ejects a host quickly on failures seen by Envoy itself (connect
    // failures, resets, timeouts). Envoy counts a gRPC status as its HTTP
    // equivalent (UNAVAILABLE = 503, a gateway failure), and a service
    // shedding load answers UNAVAILABLE, so those eject only after a long run.
    // At most half the hosts are ejected, but always one: without
    // always_eject_one_host a cluster of one host (the local topology, or a
    // headless Service with one ready pod) never ejected it, since that is 100 %.
    // Ejecting the only host changes no route (the panic threshold keeps
    // routing to it) but shows in the ejection stats.
    c.outlier_detection = {
      split_external_local_origin_errors: true,
      consecutive_local_origin_failure: 5,
      enforcing_consecutive_local_origin_failure: 100,
      consecutive_gateway_failure: 25,
      enforcing_consecutive_gateway_failure: 100,
      consecutive_5xx: 50,
      enforcing_consecutive_5xx: 100,
      interval: "5s",
      base_ejection_time: "10s",
      max_ejection_percent: 50,
      always_eject_one_host: true,
    };
  }
  return c;
}

export const buildClusters = (t: Topology) => BOOTSTRAP_CLUSTERS.map((name) => cluster(t, name));
