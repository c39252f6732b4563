// The HTTP filters of the edge, in order:
// - grpc_json_transcoder: read-only JSON for sale pages; GET /v1/sales/{sale_id}
//   and /v1/sales/{sale_id}/status become the gRPC GetSale and GetSaleStatus,
//   and every later filter and the router see the gRPC call;
// - jwt_authn: purchase tokens, required on the PlaceOrder route only;
// - local_ratelimit: PlaceOrder's token bucket at this Envoy;
// - ratelimit: the gateway's global RateLimitService;
// - grpc_stats, router.
// jwt_authn runs before the limits so that calls without a valid token never
// spend the PlaceOrder token bucket of the buyers who have one.

import { PURCHASE_TOKEN_HEADER } from "@seckill/sdk";
import { JWKS_PATH } from "../../gateway/access/jwks-server.js";
import { PURCHASE_TOKEN_AUDIENCE, PURCHASE_TOKEN_ISSUER } from "../../services/common/jwt.js";
import { duration } from "./limits.js";
import { EDGE_METHODS, FILTER, JWT_REQUIREMENT, TYPE } from "./routes.js";
import type { Topology } from "./topology.js";

const JWT_PROVIDER = "purchase_token";
// The token's issuer, audience, header and key path are the gateway's and the
// order service's own constants: the edge checks exactly what they issue and read.
export const TOKEN_ISSUER = PURCHASE_TOKEN_ISSUER;
export const TOKEN_AUDIENCE = PURCHASE_TOKEN_AUDIENCE;
export const TOKEN_HEADER = PURCHASE_TOKEN_HEADER;
export { JWKS_PATH };
export const RATE_LIMIT_DOMAIN = "seckill";

/** The services whose google.api.http rules the transcoder serves: only SaleService's GetSale and GetSaleStatus have one. */
export const TRANSCODED_SERVICES = ["seckill.v1.SaleService"];

const transcoder = (t: Topology) => ({
  name: FILTER.transcoder,
  typed_config: {
    "@type": TYPE("envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder"),
    proto_descriptor: t.protoDescriptor,
    services: TRANSCODED_SERVICES,
    print_options: { always_print_primitive_fields: true },
    // Only the annotated read methods: never POST /pkg.Service/Method for the rest.
    auto_mapping: false,
    convert_grpc_status: true,
    request_validation_options: { reject_unknown_query_parameters: true },
    max_request_body_size: 16 * 1024,
    max_response_body_size: 256 * 1024,
  },
});

function jwtAuthn(t: Topology) {
  const jwks = t.clusters.gateway_jwks;
  return {
    name: FILTER.jwt,
    typed_config: {
      "@type": TYPE("envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication"),
      providers: {
        [JWT_PROVIDER]: {
          issuer: TOKEN_ISSUER,
          audiences: [TOKEN_AUDIENCE],
          from_headers: [{ name: TOKEN_HEADER }],
          forward: true,
          clock_skew_seconds: 5,
          remote_jwks: {
            http_uri: { uri: `http://${jwks.host}:${jwks.port}${JWKS_PATH}`, cluster: "gateway_jwks", timeout: "1s" },
            cache_duration: "300s",
            // Fetched at start-up, without holding the listener back when the gateway is late.
            async_fetch: { fast_listener: true },
            retry_policy: { num_retries: 2, retry_back_off: { base_interval: "0.1s", max_interval: "1s" } },
          },
        },
      },
      // Required only where a route names it (PlaceOrder's typed_per_filter_config).
      requirement_map: { [JWT_REQUIREMENT]: { provider_name: JWT_PROVIDER } },
    },
  };
}

const localRateLimit = () => ({
  name: FILTER.localRateLimit,
  // No bucket here: only routes with their own configuration (PlaceOrder) are limited.
  typed_config: { "@type": TYPE("envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"), stat_prefix: "edge_local" },
});

const rateLimit = (t: Topology) => ({
  name: FILTER.rateLimit,
  typed_config: {
    "@type": TYPE("envoy.extensions.filters.http.ratelimit.v3.RateLimit"),
    domain: RATE_LIMIT_DOMAIN,
    timeout: duration(t.limits.rateLimitTimeoutMs),
    // Fail open: when the gateway is slow or down the services shed load themselves.
    failure_mode_deny: false,
    rate_limited_as_resource_exhausted: true,
    rate_limit_service: { grpc_service: { envoy_grpc: { cluster_name: "gateway" } }, transport_api_version: "V3" },
  },
});

function grpcStats() {
  const services = new Map<string, string[]>();
  for (const m of EDGE_METHODS) {
    const [, service, method] = m.path.split("/");
    if (!method) continue;
    services.set(service, [...(services.get(service) ?? []), method]);
  }
  return {
    name: FILTER.grpcStats,
    typed_config: {
      "@type": TYPE("envoy.extensions.filters.http.grpc_stats.v3.FilterConfig"),
      emit_filter_state: true,
      individual_method_stats_allowlist: { services: [...services].map(([name, method_names]) => ({ name, method_names })) },
    },
  };
}

const router = () => ({
  name: FILTER.router,
  typed_config: { "@type": TYPE("envoy.extensions.filters.http.router.v3.Router"), suppress_envoy_headers: true },
});

export const buildHttpFilters = (t: Topology) => [transcoder(t), jwtAuthn(t), localRateLimit(), rateLimit(t), grpcStats(), router()];
