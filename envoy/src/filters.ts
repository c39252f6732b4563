// The HTTP filters of the edge, in order: jwt_authn (purchase tokens, on the
// PlaceOrder route only), local_ratelimit (PlaceOrder's token bucket),
// ratelimit (the gateway's global RateLimitService), grpc_stats, router.
// jwt_authn comes first so that calls without a valid token never spend the
// PlaceOrder token bucket of the buyers who have one.

import { duration } from "./limits.js";
import { EDGE_METHODS, FILTER, JWT_REQUIREMENT, TYPE } from "./routes.js";
import type { Topology } from "./topology.js";

export const JWT_PROVIDER = "purchase_token";
export const TOKEN_ISSUER = "seckill-gateway";
export const TOKEN_AUDIENCE = "seckill-order";
export const TOKEN_HEADER = "x-purchase-token";
export const JWKS_PATH = "/.well-known/jwks.json";
export const RATE_LIMIT_DOMAIN = "seckill";

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

export const buildHttpFilters = (t: Topology) => [jwtAuthn(t), localRateLimit(), rateLimit(t), grpcStats(), router()];
