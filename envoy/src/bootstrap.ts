// The Envoy bootstrap of the edge, as a plain object, built from a Topology:
// one listener (connection limit, hardened HTTP connection manager, the HTTP
// filters), the upstream clusters, the overload manager and the admin
// interface on loopback. gen.ts renders it to YAML; check.ts validates it.

import { buildClusters } from "./clusters.js";
import { buildHttpFilters, localReplyConfig } from "./filters.js";
import { duration } from "./limits.js";
import { buildRouteConfig, TYPE } from "./routes.js";
import type { HostPort, Topology } from "./topology.js";
import { collectorClusters, edgeTracing } from "./tracing.js";

const address = ({ host, port }: HostPort) => ({ socket_address: { address: host, port_value: port } });

const stdoutLog = () => ({
  name: "envoy.access_loggers.stdout",
  typed_config: { "@type": TYPE("envoy.extensions.access_loggers.stream.v3.StdoutAccessLog") },
});

function httpConnectionManager(t: Topology) {
  const l = t.limits;
  return {
    name: "envoy.filters.network.http_connection_manager",
    typed_config: {
      "@type": TYPE("envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"),
      stat_prefix: "edge",
      // gRPC over HTTP/2; HTTP/1.1 too for the JSON reads of the transcoder.
      codec_type: "AUTO",
      access_log: [stdoutLog()],
      http2_protocol_options: {
        max_concurrent_streams: l.maxConcurrentStreams,
        initial_stream_window_size: l.initialStreamWindowBytes,
        initial_connection_window_size: l.initialConnectionWindowBytes,
      },
      common_http_protocol_options: {
        idle_timeout: duration(l.connectionIdleTimeoutMs),
        max_headers_count: l.maxHeadersCount,
        headers_with_underscores_action: "REJECT_REQUEST",
      },
      max_request_headers_kb: l.maxRequestHeadersKb,
      // Off for the whole stream (WatchOrder is long-lived); routes carry their own timeouts.
      request_timeout: "0s",
      request_headers_timeout: duration(l.requestHeadersTimeoutMs),
      stream_idle_timeout: duration(l.streamIdleTimeoutMs),
      drain_timeout: "5s",
      normalize_path: true,
      merge_slashes: true,
      path_with_escaped_slashes_action: "REJECT_REQUEST",
      // The edge is the first hop: the peer address is the client, X-Forwarded-For from outside is not trusted.
      use_remote_address: true,
      xff_num_trusted_hops: 0,
      server_header_transformation: "OVERWRITE",
      server_name: "seckill-edge",
      ...edgeTracing(t),
      route_config: buildRouteConfig(t),
      http_filters: buildHttpFilters(t),
      local_reply_config: localReplyConfig(),
    },
  };
}

function connectionLimit(t: Topology) {
  return {
    name: "envoy.filters.network.connection_limit",
    typed_config: {
      "@type": TYPE("envoy.extensions.filters.network.connection_limit.v3.ConnectionLimit"),
      stat_prefix: "edge_connections",
      max_connections: t.limits.maxConnections,
    },
  };
}

function tlsSocket(t: Topology) {
  if (!t.tls) return {};
  return {
    transport_socket: {
      name: "envoy.transport_sockets.tls",
      typed_config: {
        "@type": TYPE("envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"),
        require_client_certificate: true,
        common_tls_context: {
          tls_params: { tls_minimum_protocol_version: "TLSv1_2" },
          alpn_protocols: ["h2", "http/1.1"],
          tls_certificates: [{ certificate_chain: { filename: t.tls.certificateChain }, private_key: { filename: t.tls.privateKey } }],
          validation_context: { trusted_ca: { filename: t.tls.clientCa } },
        },
      },
    },
  };
}

function overloadManager(t: Topology) {
  const heap = "envoy.resource_monitors.fixed_heap";
  const at = (value: number) => [{ name: heap, threshold: { value } }];
  return {
    refresh_interval: "0.25s",
    resource_monitors: [
      {
        name: "envoy.resource_monitors.global_downstream_max_connections",
        typed_config: {
          "@type": TYPE("envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig"),
          max_active_downstream_connections: t.limits.globalMaxConnections,
        },
      },
      {
        name: heap,
        typed_config: { "@type": TYPE("envoy.extensions.resource_monitors.fixed_heap.v3.FixedHeapConfig"), max_heap_size_bytes: t.limits.maxHeapBytes },
      },
    ],
    actions: [
      { name: "envoy.overload_actions.shrink_heap", triggers: at(0.9) },
      { name: "envoy.overload_actions.stop_accepting_requests", triggers: at(0.95) },
    ],
  };
}

export function buildBootstrap(t: Topology) {
  return {
    node: { id: `seckill-edge-${t.variant}`, cluster: "seckill-edge" },
    admin: { address: address(t.admin) },
    static_resources: {
      listeners: [
        {
          name: "edge",
          address: address(t.listener),
          per_connection_buffer_limit_bytes: 32 * 1024,
          filter_chains: [{ filters: [connectionLimit(t), httpConnectionManager(t)], ...tlsSocket(t) }],
        },
      ],
      clusters: [...buildClusters(t), ...collectorClusters(t)],
    },
    overload_manager: overloadManager(t),
  };
}

export type Bootstrap = ReturnType<typeof buildBootstrap>;
