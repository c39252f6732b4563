// The HTTP filters of the edge, in order:
// - buffer: the whole request is read before it goes on, and one over
//   MAX_REQUEST_BODY_BYTES is refused (413; RESOURCE_EXHAUSTED for gRPC, see
//   localReplyConfig): every public method takes one small request message, so
//   no service sees a byte of an oversized one, nor holds a stream for a client
//   that sends its body slowly;
// - grpc_json_transcoder: read-only JSON for sale pages; GET /v1/sales/{sale_id}
//   and /v1/sales/{sale_id}/status become the gRPC GetSale and GetSaleStatus,
//   and every later filter and the router see the gRPC call;
// - local_ratelimit: PlaceOrder's token bucket at this Envoy;
// - jwt_authn: purchase tokens, required on the PlaceOrder route only;
// - ratelimit: the gateway's global RateLimitService;
// - grpc_stats, router.
// The token bucket comes first so that the excess of an overload is refused
// for the price of a counter: checking a token's ES256 signature costs Envoy
// about 90 µs of CPU, and with jwt_authn first every refused call paid it
// (bench figure e-edge at 3×: Envoy's refusals p99 2.9 s with jwt_authn
// first, 0.3 s with the bucket first, on the same 2-core machine). The price:
// calls without a valid token spend the bucket too, so a flood of forged
// calls can crowd buyers out of it, as any flood can; the connection limit
// and the overload manager bound it.

import { PURCHASE_TOKEN_HEADER } from "@seckill/sdk";
import { JWKS_PATH } from "../../gateway/access/jwks-server.js";
import { PURCHASE_TOKEN_AUDIENCE, PURCHASE_TOKEN_ISSUER } from "../../services/common/jwt.js";
import { duration } from "./limits.js";
import { EDGE_METHODS, FILTER, JWT_REQUIREMENT, TYPE } from "./routes.js";
import { RATE_LIMIT_CLUSTER, type Topology } from "./topology.js";

const JWT_PROVIDER = "purchase_token";
// The token's issuer, audience, header and key path are the gateway's and the
// order service's own constants: the edge checks exactly what they issue and read.
export const TOKEN_ISSUER = PURCHASE_TOKEN_ISSUER;
export const TOKEN_AUDIENCE = PURCHASE_TOKEN_AUDIENCE;
export const TOKEN_HEADER = PURCHASE_TOKEN_HEADER;
export { JWKS_PATH };
export const RATE_LIMIT_DOMAIN = "seckill";

/**
 * The largest request body the edge passes on, in bytes: every public request
 * is a few hundred bytes (ids, a token in the metadata), the services take up
 * to GRPC_MAX_MESSAGE_BYTES (256 KiB). Without a limit here Envoy streamed any
 * body to the service, which read it before refusing it.
 */
export const MAX_REQUEST_BODY_BYTES = 16 * 1024;

/**
 * How long jwt_authn keeps the gateway's JWKS (remote_jwks.cache_duration).
 * Envoy 1.40's remote_jwks has no refetch on an unknown kid (its only knobs are
 * cache_duration, async_fetch and retry_policy): a token whose kid is not in
 * the keys it holds is refused, 401 "Jwks doesn't have key to match kid or alg
 * from Jwt", until the next fetch. So this number bounds how late a rotated key
 * is known. With async_fetch Envoy refetches on the main thread
 * JWKS_REFETCH_SECONDS after each fetch (5 s before the cache would expire),
 * and keeps the keys it has when a fetch fails (it retries a second later).
 * The gateway rereads its key directory every KEY_RELOAD_MS (5 s), so a key
 * published ahead of use is known to every Envoy at most about 10 s after its
 * file appears, and a key that signs at once is refused at the edge for about
 * that long at most; with the 300 s used before, it was five minutes, and a
 * rotation by `rollout restart` (Secret files share one time, so the new kid
 * signs at once) refused every purchase at the edge for that long. The cost is
 * one small GET per Envoy every 5 s. Whole seconds: Envoy reads this duration
 * in seconds.
 */
export const JWKS_CACHE_SECONDS = 10;
/** Envoy's background refetch of the JWKS: 5 s before the cache duration runs out. */
export const JWKS_REFETCH_SECONDS = JWKS_CACHE_SECONDS - 5;

/** The services whose google.api.http rules the transcoder serves: only SaleService's GetSale and GetSaleStatus have one. */
export const TRANSCODED_SERVICES = ["seckill.v1.SaleService"];

/**
 * What envoy/seckill.pb holds: the transcoded services, and google.rpc.Status
 * with the error details the services send (ErrorInfo, RetryInfo, BadRequest).
 * convert_grpc_status turns a refusal into a JSON body only when it can decode
 * every detail of grpc-status-details-bin; without these types a JSON client
 * got the HTTP code with an empty body typed application/grpc+proto.
 */
export const DESCRIPTOR_TYPES = [...TRANSCODED_SERVICES, "google.rpc.Status", "google.rpc.ErrorInfo", "google.rpc.RetryInfo", "google.rpc.BadRequest"];

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
    max_request_body_size: MAX_REQUEST_BODY_BYTES,
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
            // Short, so that a rotated key is known within seconds (see JWKS_CACHE_SECONDS).
            cache_duration: `${JWKS_CACHE_SECONDS}s`,
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

const requestBuffer = () => ({
  name: "envoy.filters.http.buffer",
  typed_config: { "@type": TYPE("envoy.extensions.filters.http.buffer.v3.Buffer"), max_request_bytes: MAX_REQUEST_BODY_BYTES },
});

/**
 * The HTTP connection manager's local_reply_config. Envoy answers a gRPC call
 * it refuses itself with the gRPC status of its HTTP code, and has none for 413
 * (it would be UNKNOWN): a gRPC call over MAX_REQUEST_BODY_BYTES gets
 * RESOURCE_EXHAUSTED instead, as from a service whose message limit it passes.
 */
export const localReplyConfig = () => ({
  mappers: [
    {
      filter: {
        and_filter: {
          filters: [
            { status_code_filter: { comparison: { op: "EQ", value: { default_value: 413, runtime_key: "edge.local_reply.payload_too_large" } } } },
            { header_filter: { header: { name: "content-type", string_match: { prefix: "application/grpc" } } } },
          ],
        },
      },
      headers_to_add: [{ header: { key: "grpc-status", value: "8" }, append_action: "OVERWRITE_IF_EXISTS_OR_ADD" }],
    },
  ],
});

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
    rate_limit_service: { grpc_service: { envoy_grpc: { cluster_name: RATE_LIMIT_CLUSTER } }, transport_api_version: "V3" },
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

export const buildHttpFilters = (t: Topology) => [requestBuffer(), transcoder(t), localRateLimit(), jwtAuthn(t), rateLimit(t), grpcStats(), router()];
