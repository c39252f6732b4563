// What the edge routes where: the public gRPC methods, each to its group's
// cluster, and everything else answered by Envoy itself (HTTP 404, which a
// gRPC client sees as UNIMPLEMENTED). The route table is built from EDGE_METHODS.

import { duration, type EdgeLimits } from "./limits.js";
import type { ClusterName, Topology } from "./topology.js";

type MethodKind =
  /** Idempotent read: retried on UNAVAILABLE. */
  | "read"
  /** Changes state: retried by the edge only when the service refused the stream unseen. */
  | "write"
  /** Server streaming: no route timeout, a maximum stream duration instead. */
  | "stream"
  /** The purchase: purchase token, local token bucket, sale-scoped global limit. */
  | "purchase";

interface EdgeMethod {
  /** An exact gRPC path "/pkg.Service/Method", or a service prefix ending in "/". */
  path: string;
  cluster: ClusterName;
  kind: MethodKind;
}

export const PLACE_ORDER = "/seckill.v1.OrderService/PlaceOrder";
const WATCH_ORDER = "/seckill.v1.OrderService/WatchOrder";

/** Every method the edge routes, in route order. Anything else is answered 404 by Envoy. */
export const EDGE_METHODS: readonly EdgeMethod[] = [
  // The flash-sale group: the purchase and what buyers poll around it.
  { path: PLACE_ORDER, cluster: "order_flash", kind: "purchase" },
  { path: WATCH_ORDER, cluster: "order_flash", kind: "stream" },
  { path: "/seckill.v1.SaleService/GetSaleStatus", cluster: "inventory_flash", kind: "read" },
  // Challenges and purchase tokens.
  { path: "/seckill.v1.AccessService/", cluster: "gateway", kind: "write" },
  // The default group: the rest of the public API.
  { path: "/seckill.v1.OrderService/GetOrder", cluster: "order_default", kind: "read" },
  { path: "/seckill.v1.OrderService/ListOrders", cluster: "order_default", kind: "read" },
  { path: "/seckill.v1.OrderService/PayOrder", cluster: "order_default", kind: "write" },
  { path: "/seckill.v1.OrderService/CancelOrder", cluster: "order_default", kind: "write" },
  { path: "/seckill.v1.SaleService/GetSale", cluster: "inventory_default", kind: "read" },
  { path: "/seckill.v1.SaleService/ListSales", cluster: "inventory_default", kind: "read" },
];

/** Names shared by the filters (filters.ts) and the per-route configuration here. */
export const FILTER = {
  transcoder: "envoy.filters.http.grpc_json_transcoder",
  jwt: "envoy.filters.http.jwt_authn",
  localRateLimit: "envoy.filters.http.local_ratelimit",
  rateLimit: "envoy.filters.http.ratelimit",
  grpcStats: "envoy.filters.http.grpc_stats",
  router: "envoy.filters.http.router",
} as const;
export const JWT_REQUIREMENT = "purchase_token";
export const TYPE = (name: string) => `type.googleapis.com/${name}`;

export const RETRY_ON_REFUSED = "refused-stream";
export const RETRY_ON_UNAVAILABLE = "unavailable";

const header = (name: string, key: string) => ({ request_headers: { header_name: name, descriptor_key: key } });

/** Descriptors sent to the gateway's RateLimitService (domain seckill). */
function rateLimits(kind: MethodKind) {
  const limits: object[] = [{ actions: [header("x-user-id", "user_id")] }, { actions: [{ remote_address: {} }] }];
  if (kind === "purchase") limits.push({ actions: [header("x-sale-id", "sale_id"), header("x-user-id", "user_id")] });
  return limits;
}

function routeAction(m: EdgeMethod, l: EdgeLimits) {
  const action: Record<string, unknown> = { cluster: m.cluster };
  switch (m.kind) {
    case "stream":
      // No route timeout for a stream: it is bounded by its duration and its silence.
      action.timeout = "0s";
      action.idle_timeout = duration(l.watchIdleTimeoutMs);
      action.max_stream_duration = { max_stream_duration: duration(l.watchMaxDurationMs), grpc_timeout_header_max: duration(l.watchMaxDurationMs) };
      break;
    // A unary route's timeout is the longest wait for the upstream, counted from
    // the end of the request; then Envoy answers 504, which a gRPC client sees as
    // UNAVAILABLE (retried with the same request id). No max_stream_duration on
    // these routes: on a route that has one, Envoy ignores the route timeout (the
    // router's "new timeouts") and bounds a call only by the client's
    // grpc-timeout capped by grpc_timeout_header_max, so a call without a
    // deadline to a hung service waited for the 30 s stream idle timeout, and
    // one with a deadline ended in "downstream duration timeout"
    // (DEADLINE_EXCEEDED), never in the route timeout. A client's shorter
    // deadline still ends the call: the client cancels it, Envoy resets the
    // upstream stream, and the service, which gets the grpc-timeout header, stops too.
    case "purchase":
      action.timeout = duration(l.placeOrderTimeoutMs);
      break;
    default:
      action.timeout = duration(l.unaryTimeoutMs);
  }
  // A stream the service refused — RST_STREAM REFUSED_STREAM, or beyond the
  // last stream id of its GOAWAY — never reached it (RFC 9113, section 8.7), so
  // every call, PlaceOrder included, is sent again once on another stream or
  // connection. Only the idempotent reads are retried on UNAVAILABLE as well.
  action.retry_policy =
    m.kind === "read"
      ? {
          retry_on: `${RETRY_ON_UNAVAILABLE},${RETRY_ON_REFUSED}`,
          num_retries: l.readRetries,
          per_try_timeout: duration(l.readPerTryTimeoutMs),
          retry_back_off: { base_interval: "0.025s", max_interval: "0.25s" },
        }
      : { retry_on: RETRY_ON_REFUSED, num_retries: 1 };
  action.rate_limits = rateLimits(m.kind);
  return action;
}

function perRoute(m: EdgeMethod, l: EdgeLimits): Record<string, unknown> | undefined {
  if (m.kind !== "purchase") return undefined;
  const full = { default_value: { numerator: 100, denominator: "HUNDRED" } };
  return {
    [FILTER.jwt]: { "@type": TYPE("envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig"), requirement_name: JWT_REQUIREMENT },
    [FILTER.localRateLimit]: {
      "@type": TYPE("envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"),
      stat_prefix: "place_order",
      token_bucket: { max_tokens: l.placeOrderBurst, tokens_per_fill: l.placeOrderPerSecond, fill_interval: "1s" },
      filter_enabled: { runtime_key: "edge.place_order_ratelimit.enabled", ...full },
      filter_enforced: { runtime_key: "edge.place_order_ratelimit.enforced", ...full },
      local_rate_limit_per_downstream_connection: false,
      status: { code: "TooManyRequests" },
      rate_limited_as_resource_exhausted: true,
      response_headers_to_add: [{ header: { key: "x-seckill-limited", value: "edge" }, append_action: "OVERWRITE_IF_EXISTS_OR_ADD" }],
    },
  };
}

/** The route table of the edge's single virtual host. */
export function buildRouteConfig(t: Topology) {
  const routes: object[] = EDGE_METHODS.map((m) => {
    const match = m.path.endsWith("/") ? { prefix: m.path, grpc: {} } : { path: m.path, grpc: {} };
    const route: Record<string, unknown> = { name: m.path, match, route: routeAction(m, t.limits) };
    const typed = perRoute(m, t.limits);
    if (typed) route.typed_per_filter_config = typed;
    return route;
  });
  // Internal and operator services (InventoryService, the SaleService admin
  // methods, DeadLetterService, reflection) and anything else: never routed.
  routes.push({ name: "not_public", match: { prefix: "/" }, direct_response: { status: 404 } });
  return {
    name: "edge",
    validate_clusters: true,
    virtual_hosts: [{ name: "seckill", domains: ["*"], routes }],
  };
}
