// The edge's part of a purchase's trace. Every request gets an x-request-id of
// Envoy's own (a plain UUID: it plays no part in sampling). Envoy forwards a
// client's W3C `traceparent` to the services as it came; with an OTLP
// collector in the topology it also traces: it continues the client's trace
// (the same trace id, Envoy's span as the services' parent) or starts one,
// and exports its spans to the collector over OTLP/HTTP. Envoy's OpenTelemetry
// tracer cannot run without an exporter, so without a collector there is none.
import { TYPE } from "./routes.js";
import type { HostPort, Topology } from "./topology.js";

/** The cluster of the OTLP collector, when the topology has one. */
export const COLLECTOR_CLUSTER = "otel_collector";

/** The HTTP connection manager's request id and tracing settings. */
export function edgeTracing(t: Topology) {
  return {
    generate_request_id: true,
    request_id_extension: {
      typed_config: {
        "@type": TYPE("envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig"),
        pack_trace_reason: false,
        use_request_id_for_trace_sampling: false,
      },
    },
    ...(t.otlpCollector && {
      tracing: {
        // Every request is traced; the services follow the sampled flag Envoy sends.
        random_sampling: { value: 100 },
        provider: {
          name: "envoy.tracers.opentelemetry",
          typed_config: {
            "@type": TYPE("envoy.config.trace.v3.OpenTelemetryConfig"),
            service_name: "seckill-edge",
            http_service: {
              http_uri: { uri: `http://${t.otlpCollector.host}:${t.otlpCollector.port}/v1/traces`, cluster: COLLECTOR_CLUSTER, timeout: "1s" },
            },
          },
        },
      },
    }),
  };
}

/** The collector's cluster (plain HTTP/1.1), when the topology has one. */
export function collectorClusters(t: Topology) {
  const collector: HostPort | undefined = t.otlpCollector;
  if (!collector) return [];
  return [
    {
      name: COLLECTOR_CLUSTER,
      type: t.discovery,
      connect_timeout: "1s",
      load_assignment: {
        cluster_name: COLLECTOR_CLUSTER,
        endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: collector.host, port_value: collector.port } } } }] }],
      },
    },
  ];
}
