// Checks of the edge's bootstrap that Envoy itself cannot know: every
// route's cluster exists, every cluster points at its service's address, every
// limit of the design is in place, the internal and operator methods are not
// reachable, and only idempotent reads are retried (on UNAVAILABLE only).
// Works on the parsed YAML (snake_case field names, as gen.ts writes them).

import { readConfig } from "../../services/common/config.js";
import { EDGE_METHODS, FILTER, PLACE_ORDER, RETRY_ON_REFUSED, RETRY_ON_UNAVAILABLE } from "./routes.js";
import { BOOTSTRAP_CLUSTERS, GRPC_CLUSTERS, k8sService, RATE_LIMIT_CLUSTER, upstreamOf, type BootstrapCluster, type ClusterName, type HostPort, type Variant } from "./topology.js";
import { TOKEN_HEADER, RATE_LIMIT_DOMAIN } from "./filters.js";

/** A problem in a bootstrap: where in the document (e.g. static_resources.clusters[0].connect_timeout), and what. */
export interface ConfigIssue {
  path: string;
  message: string;
}

// biome-ignore lint/suspicious/noExplicitAny: a parsed bootstrap, whose shape is what this module checks
type Obj = Record<string, any>;

/** The gRPC services of the contract and their methods (from proto/). */
type ServiceMethods = Record<string, string[]>;

export interface Contract {
  services: ServiceMethods;
  /** gRPC paths of the methods with a google.api.http rule. */
  httpRules: string[];
}

/** Methods the edge serves, by service; every other method of the contract stays inside. */
export const PUBLIC_METHODS: Record<string, "all" | string[]> = {
  "seckill.v1.OrderService": "all",
  "seckill.v1.AccessService": "all",
  "seckill.v1.SaleService": ["GetSale", "ListSales", "GetSaleStatus"],
};

/** Idempotent reads: the only methods the edge may retry. */
const READ_METHODS = [
  "/seckill.v1.SaleService/GetSaleStatus",
  "/seckill.v1.SaleService/GetSale",
  "/seckill.v1.SaleService/ListSales",
  "/seckill.v1.OrderService/GetOrder",
  "/seckill.v1.OrderService/ListOrders",
];

/** Paths outside the contract that must not be reachable either. */
const OTHER_UNREACHABLE = [
  "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
  "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
  "/grpc.health.v1.Health/Check",
  "/grpc.health.v1.Health/Watch",
  "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit",
  "/",
];

const parseAddr = (addr: string): HostPort => {
  const i = addr.lastIndexOf(":");
  return { host: addr.slice(0, i), port: Number(addr.slice(i + 1)) };
};

/**
 * Where each cluster must point, derived independently of envoy/src/topology.ts:
 * locally the defaults of services/common/config.ts (and the design's ports for
 * what it does not define), in Kubernetes the Service of each service and group
 * on the service's standard port (the port of its local default address).
 */
function expectedEndpoints(variant: Variant): Record<ClusterName, HostPort> {
  const config = readConfig({}) as unknown as Record<string, unknown>;
  const addr = (key: string, fallback: string) => parseAddr(typeof config[key] === "string" ? (config[key] as string) : fallback);
  const local: Record<ClusterName, HostPort> = {
    inventory_default: addr("inventoryAddr", "127.0.0.1:50051"),
    order_default: addr("orderAddr", "127.0.0.1:50052"),
    inventory_flash: addr("flashInventoryAddr", "127.0.0.1:50055"),
    order_flash: addr("flashOrderAddr", "127.0.0.1:50056"),
    gateway: addr("gatewayAddr", "127.0.0.1:50054"),
    gateway_jwks: addr("gatewayJwksAddr", "127.0.0.1:50058"),
  };
  if (variant === "local") return local;
  return {
    inventory_default: k8sService("inventory-default", local.inventory_default.port),
    order_default: k8sService("order-default", local.order_default.port),
    inventory_flash: k8sService("inventory-flash", local.inventory_default.port),
    order_flash: k8sService("order-flash", local.order_default.port),
    gateway: k8sService("gateway", local.gateway.port),
    gateway_jwks: k8sService("gateway", local.gateway_jwks.port),
  };
}

interface Located<T> {
  path: string;
  value: T;
}

/** Where a gRPC path ends up: a cluster, or an answer from Envoy itself. */
type RouteOutcome = { cluster: string; route: Located<Obj> } | { direct: number } | { unmatched: true };

function routeMatches(match: Obj | undefined, path: string): "yes" | "maybe" | "no" {
  if (!match) return "no";
  let hit: boolean;
  if (typeof match.path === "string") hit = match.path === path;
  else if (typeof match.prefix === "string") hit = path.startsWith(match.prefix);
  else if (typeof match.path_separated_prefix === "string") hit = path === match.path_separated_prefix || path.startsWith(`${match.path_separated_prefix}/`);
  else if (match.safe_regex?.regex !== undefined) hit = new RegExp(`^(?:${match.safe_regex.regex})$`).test(path);
  else return "maybe";
  if (!hit) return "no";
  const conditional = ["headers", "query_parameters", "runtime_fraction", "dynamic_metadata", "filter_state", "cel_expression"].some((k) => match[k] !== undefined);
  return conditional ? "maybe" : "yes";
}

export class BootstrapFacts {
  readonly issues: ConfigIssue[] = [];
  constructor(readonly doc: Obj) {}

  fail(path: string, message: string) {
    this.issues.push({ path, message });
  }

  listeners(): Located<Obj>[] {
    return (this.doc.static_resources?.listeners ?? []).map((value: Obj, i: number) => ({ path: `static_resources.listeners[${i}]`, value }));
  }

  clusters(): Located<Obj>[] {
    return (this.doc.static_resources?.clusters ?? []).map((value: Obj, i: number) => ({ path: `static_resources.clusters[${i}]`, value }));
  }

  networkFilters(): Located<Obj>[] {
    return this.listeners().flatMap((l) =>
      (l.value.filter_chains ?? []).flatMap((chain: Obj, c: number) =>
        (chain.filters ?? []).map((value: Obj, f: number) => ({ path: `${l.path}.filter_chains[${c}].filters[${f}]`, value })),
      ),
    );
  }

  connectionManagers(): Located<Obj>[] {
    return this.networkFilters()
      .filter((f) => f.value.name === "envoy.filters.network.http_connection_manager")
      .map((f) => ({ path: `${f.path}.typed_config`, value: f.value.typed_config ?? {} }));
  }

  virtualHosts(): Located<Obj>[] {
    return this.connectionManagers().flatMap((m) =>
      (m.value.route_config?.virtual_hosts ?? []).map((value: Obj, i: number) => ({ path: `${m.path}.route_config.virtual_hosts[${i}]`, value })),
    );
  }

  routes(): Located<Obj>[] {
    return this.virtualHosts().flatMap((vh) => (vh.value.routes ?? []).map((value: Obj, i: number) => ({ path: `${vh.path}.routes[${i}]`, value })));
  }

  httpFilters(): Located<Obj>[] {
    return this.connectionManagers().flatMap((m) => (m.value.http_filters ?? []).map((value: Obj, i: number) => ({ path: `${m.path}.http_filters[${i}]`, value })));
  }

  /** Where a gRPC call to `path` is sent (first matching route of the first virtual host, as Envoy does for domain "*"). */
  outcome(path: string): RouteOutcome {
    for (const vh of this.virtualHosts()) {
      for (const [i, route] of (vh.value.routes ?? []).entries()) {
        const m = routeMatches(route.match, path);
        if (m === "no") continue;
        const located = { path: `${vh.path}.routes[${i}]`, value: route };
        if (route.route) {
          const cluster = route.route.cluster ?? route.route.weighted_clusters?.clusters?.map((c: Obj) => c.name).join("+") ?? "(from a header)";
          return { cluster, route: located };
        }
        if (m === "yes" && route.direct_response) return { direct: route.direct_response.status };
        if (m === "yes") return { direct: 0 };
      }
      return { unmatched: true };
    }
    return { unmatched: true };
  }
}

/** Every method of every gRPC service of the contract, as gRPC paths. */
function paths(services: ServiceMethods, keep: (service: string, method: string) => boolean): string[] {
  return Object.entries(services).flatMap(([service, methods]) => methods.filter((m) => keep(service, m)).map((m) => `/${service}/${m}`));
}

const isPublic = (service: string, method: string) => {
  const allowed = PUBLIC_METHODS[service];
  return allowed === "all" || (allowed?.includes(method) ?? false);
};

function checkClustersExist(f: BootstrapFacts) {
  const defined = new Set(f.clusters().map((c) => c.value.name));
  const refer = (path: string, name: unknown) => {
    if (typeof name === "string" && !defined.has(name)) f.fail(path, `cluster "${name}" is not defined (clusters: ${[...defined].join(", ")})`);
  };
  for (const r of f.routes()) {
    const action = r.value.route;
    if (!action) continue;
    refer(`${r.path}.route.cluster`, action.cluster);
    for (const [i, c] of (action.weighted_clusters?.clusters ?? []).entries()) refer(`${r.path}.route.weighted_clusters.clusters[${i}].name`, c.name);
  }
  const walk = (node: unknown, path: string) => {
    if (Array.isArray(node)) {
      for (const [i, v] of node.entries()) walk(v, `${path}[${i}]`);
    } else if (node && typeof node === "object") {
      for (const [k, v] of Object.entries(node as Obj)) {
        const at = path ? `${path}.${k}` : k;
        if (k === "envoy_grpc") refer(`${at}.cluster_name`, (v as Obj).cluster_name);
        if (k === "http_uri") refer(`${at}.cluster`, (v as Obj).cluster);
        walk(v, at);
      }
    }
  };
  walk(f.doc, "");
}

function checkEndpoints(f: BootstrapFacts, variant: Variant) {
  const expected = expectedEndpoints(variant);
  const seen = new Set<string>();
  for (const c of f.clusters()) {
    const name = c.value.name as BootstrapCluster;
    seen.add(name);
    const want = BOOTSTRAP_CLUSTERS.includes(name) ? expected[upstreamOf(name)] : undefined;
    if (!want) {
      f.fail(`${c.path}.name`, `unexpected cluster "${name}" (expected ${BOOTSTRAP_CLUSTERS.join(", ")})`);
      continue;
    }
    const endpoints = (c.value.load_assignment?.endpoints ?? []).flatMap((e: Obj) => e.lb_endpoints ?? []);
    if (endpoints.length === 0) f.fail(`${c.path}.load_assignment`, `cluster "${name}" has no endpoints`);
    endpoints.forEach((e: Obj, i: number) => {
      const socket = e.endpoint?.address?.socket_address ?? {};
      if (socket.address !== want.host || socket.port_value !== want.port) {
        f.fail(
          `${c.path}.load_assignment.endpoints[*].lb_endpoints[${i}]`,
          `cluster "${name}" points at ${socket.address}:${socket.port_value}, its service is at ${want.host}:${want.port} (${variant})`,
        );
      }
    });
  }
  for (const name of BOOTSTRAP_CLUSTERS) if (!seen.has(name)) f.fail("static_resources.clusters", `cluster "${name}" is missing`);
}

const positive = (v: unknown) => typeof v === "number" && v > 0;

function checkListenerLimits(f: BootstrapFacts) {
  for (const l of f.listeners()) {
    for (const [c, chain] of (l.value.filter_chains ?? []).entries()) {
      const names = (chain.filters ?? []).map((x: Obj) => x.name);
      const limit = (chain.filters ?? []).find((x: Obj) => x.name === "envoy.filters.network.connection_limit");
      const at = `${l.path}.filter_chains[${c}].filters`;
      if (!limit) f.fail(at, "no envoy.filters.network.connection_limit filter on the listener");
      else if (!positive(limit.typed_config?.max_connections)) f.fail(at, "connection_limit without max_connections");
      else if (names.indexOf("envoy.filters.network.connection_limit") > names.indexOf("envoy.filters.network.http_connection_manager")) {
        f.fail(at, "connection_limit must come before the HTTP connection manager");
      }
    }
  }
  const monitors = f.doc.overload_manager?.resource_monitors ?? [];
  const global = monitors.find((m: Obj) => m.name === "envoy.resource_monitors.global_downstream_max_connections");
  if (!global || !positive(global.typed_config?.max_active_downstream_connections)) {
    f.fail("overload_manager.resource_monitors", "no global_downstream_max_connections resource monitor with max_active_downstream_connections");
  }
  const admin = f.doc.admin?.address?.socket_address?.address;
  if (admin !== "127.0.0.1" && admin !== "::1") f.fail("admin.address.socket_address.address", `the admin interface must listen on loopback, not ${admin}`);
}

function checkConnectionManager(f: BootstrapFacts) {
  const managers = f.connectionManagers();
  if (managers.length === 0) f.fail("static_resources.listeners", "no HTTP connection manager");
  for (const { path, value: m } of managers) {
    const need = (cond: boolean, field: string, what: string) => cond || f.fail(`${path}.${field}`, what);
    const h2 = m.http2_protocol_options ?? {};
    need(positive(h2.max_concurrent_streams), "http2_protocol_options.max_concurrent_streams", "HTTP/2 streams per connection must be bounded");
    need(positive(h2.initial_stream_window_size), "http2_protocol_options.initial_stream_window_size", "the HTTP/2 stream window must be bounded");
    need(positive(h2.initial_connection_window_size), "http2_protocol_options.initial_connection_window_size", "the HTTP/2 connection window must be bounded");
    need(positive(m.max_request_headers_kb), "max_request_headers_kb", "request headers must be bounded");
    need(
      m.common_http_protocol_options?.headers_with_underscores_action === "REJECT_REQUEST",
      "common_http_protocol_options.headers_with_underscores_action",
      "headers with underscores must be rejected (REJECT_REQUEST)",
    );
    need(typeof m.stream_idle_timeout === "string" && m.stream_idle_timeout !== "0s", "stream_idle_timeout", "a stream idle timeout is required");
    need(m.normalize_path === true, "normalize_path", "normalize_path must be true");
    need(m.merge_slashes === true, "merge_slashes", "merge_slashes must be true");
    need(
      ["REJECT_REQUEST", "UNESCAPE_AND_REDIRECT"].includes(m.path_with_escaped_slashes_action),
      "path_with_escaped_slashes_action",
      "escaped slashes must be rejected or redirected",
    );
    need(m.use_remote_address === true, "use_remote_address", "the edge must use the peer address (use_remote_address: true)");
  }
}

function checkHttpFilters(f: BootstrapFacts) {
  const filters = f.httpFilters();
  const index = (name: string) => filters.findIndex((x) => x.value.name === name);
  const base = f.connectionManagers()[0]?.path ?? "static_resources.listeners";
  for (const name of [FILTER.jwt, FILTER.localRateLimit, FILTER.rateLimit, FILTER.router]) {
    if (index(name) < 0) f.fail(`${base}.http_filters`, `the ${name} filter is missing`);
  }
  if (filters.length && filters[filters.length - 1].value.name !== FILTER.router) f.fail(`${base}.http_filters`, "the router must be the last HTTP filter");
  const order = [FILTER.localRateLimit, FILTER.jwt, FILTER.rateLimit, FILTER.router].map(index).filter((i) => i >= 0);
  if (order.some((v, i) => i > 0 && v < order[i - 1])) f.fail(`${base}.http_filters`, "HTTP filters must run local_ratelimit, jwt_authn, ratelimit, router in that order");

  const rl = filters.find((x) => x.value.name === FILTER.rateLimit);
  if (rl) {
    const c = rl.value.typed_config ?? {};
    const at = `${rl.path}.typed_config`;
    if (c.domain !== RATE_LIMIT_DOMAIN) f.fail(`${at}.domain`, `the rate limit domain must be "${RATE_LIMIT_DOMAIN}"`);
    if (typeof c.timeout !== "string") f.fail(`${at}.timeout`, "the global rate limit needs a timeout");
    if (c.failure_mode_deny !== false) f.fail(`${at}.failure_mode_deny`, "the global rate limit must fail open (failure_mode_deny: false, set explicitly)");
    if (c.rate_limited_as_resource_exhausted !== true) f.fail(`${at}.rate_limited_as_resource_exhausted`, "limited calls must get RESOURCE_EXHAUSTED");
    if (c.rate_limit_service?.grpc_service?.envoy_grpc?.cluster_name !== RATE_LIMIT_CLUSTER) {
      f.fail(`${at}.rate_limit_service`, `the rate limit service is the gateway's own cluster "${RATE_LIMIT_CLUSTER}"`);
    }
  }
  const jwt = filters.find((x) => x.value.name === FILTER.jwt);
  if (jwt) {
    const c = jwt.value.typed_config ?? {};
    if ((c.rules ?? []).length > 0) f.fail(`${jwt.path}.typed_config.rules`, "purchase tokens are required per route (PlaceOrder), not by rules");
    for (const [name, p] of Object.entries<Obj>(c.providers ?? {})) {
      const at = `${jwt.path}.typed_config.providers["${name}"]`;
      if (!p.issuer || !(p.audiences ?? []).length) f.fail(at, "a token provider needs an issuer and audiences");
      if (!(p.from_headers ?? []).some((h: Obj) => h.name === TOKEN_HEADER)) f.fail(`${at}.from_headers`, `tokens come from the ${TOKEN_HEADER} header`);
      if (!p.remote_jwks?.cache_duration) f.fail(`${at}.remote_jwks`, "keys come from the gateway's JWKS, cached (remote_jwks.cache_duration)");
    }
  }
}

function checkPlaceOrder(f: BootstrapFacts) {
  const out = f.outcome(PLACE_ORDER);
  if (!("cluster" in out)) return; // reported by checkRouting
  const { path, value } = out.route;
  const typed = value.typed_per_filter_config ?? {};
  const local = typed[FILTER.localRateLimit];
  const full = (p: Obj | undefined) => p?.default_value?.numerator === 100 && (p.default_value.denominator ?? "HUNDRED") === "HUNDRED";
  if (!local?.token_bucket) f.fail(`${path}.typed_per_filter_config`, "PlaceOrder needs a local_ratelimit token bucket");
  else {
    if (!full(local.filter_enabled) || !full(local.filter_enforced))
      f.fail(`${path}.typed_per_filter_config["${FILTER.localRateLimit}"]`, "the PlaceOrder token bucket must be enabled and enforced for 100 % of calls");
    if (local.local_rate_limit_per_downstream_connection !== false)
      f.fail(
        `${path}.typed_per_filter_config["${FILTER.localRateLimit}"].local_rate_limit_per_downstream_connection`,
        "the PlaceOrder bucket is shared by all connections (false, set explicitly)",
      );
    if (local.rate_limited_as_resource_exhausted !== true)
      f.fail(`${path}.typed_per_filter_config["${FILTER.localRateLimit}"].rate_limited_as_resource_exhausted`, "limited purchases must get RESOURCE_EXHAUSTED");
  }
  const requirement = typed[FILTER.jwt]?.requirement_name;
  const jwt = f.httpFilters().find((x) => x.value.name === FILTER.jwt);
  if (!requirement || !jwt?.value.typed_config?.requirement_map?.[requirement])
    f.fail(`${path}.typed_per_filter_config`, "PlaceOrder must require a purchase token (jwt_authn requirement_name from requirement_map)");
  const descriptors = (value.route?.rate_limits ?? []).map((r: Obj) => (r.actions ?? []).map((a: Obj) => a.request_headers?.descriptor_key ?? Object.keys(a)[0]).join(","));
  for (const want of ["user_id", "remote_address", "sale_id,user_id"]) {
    if (!descriptors.includes(want)) f.fail(`${path}.route.rate_limits`, `PlaceOrder needs the global rate limit descriptor [${want}]`);
  }
  for (const r of f.routes()) {
    if (r.value !== value && r.value.typed_per_filter_config?.[FILTER.jwt]?.requirement_name) {
      f.fail(`${r.path}.typed_per_filter_config`, "only PlaceOrder requires a purchase token");
    }
  }
}

function checkClusterLimits(f: BootstrapFacts) {
  for (const c of f.clusters()) {
    const name = c.value.name;
    const t = c.value.circuit_breakers?.thresholds?.[0];
    for (const key of ["max_connections", "max_pending_requests", "max_requests", "max_retries"]) {
      if (!positive(t?.[key])) f.fail(`${c.path}.circuit_breakers.thresholds[0].${key}`, `cluster "${name}" needs a circuit breaker ${key}`);
    }
    if (typeof c.value.connect_timeout !== "string") f.fail(`${c.path}.connect_timeout`, `cluster "${name}" needs a connect timeout`);
    if (!GRPC_CLUSTERS.includes(name)) continue;
    const od = c.value.outlier_detection;
    if (!od || !(positive(od.consecutive_5xx) || positive(od.consecutive_gateway_failure)))
      f.fail(`${c.path}.outlier_detection`, `service cluster "${name}" needs outlier detection`);
    if (!(c.value.health_checks ?? []).some((h: Obj) => h.grpc_health_check)) f.fail(`${c.path}.health_checks`, `service cluster "${name}" needs a gRPC health check`);
    const http2 = Object.values<Obj>(c.value.typed_extension_protocol_options ?? {}).find((o) => o.explicit_http_config?.http2_protocol_options)?.explicit_http_config
      .http2_protocol_options;
    if (!http2) f.fail(`${c.path}.typed_extension_protocol_options`, `gRPC cluster "${name}" must speak HTTP/2 (explicit http2_protocol_options)`);
    else if (!(positive(http2.max_concurrent_streams) && http2.max_concurrent_streams <= MAX_WATCHES_PER_CONNECTION)) {
      f.fail(
        `${c.path}.typed_extension_protocol_options`,
        `gRPC cluster "${name}": upstream max_concurrent_streams must be set and at most the services' MAX_WATCHES_PER_CONNECTION (${MAX_WATCHES_PER_CONNECTION}), or watches carried over one upstream connection are refused`,
      );
    }
  }
}

const MAX_WATCHES_PER_CONNECTION = readConfig({}).maxWatchesPerConnection;

function checkRouting(f: BootstrapFacts, services: ServiceMethods) {
  for (const path of [...paths(services, (s, m) => !isPublic(s, m)), ...OTHER_UNREACHABLE]) {
    const out = f.outcome(path);
    if ("cluster" in out) f.fail(out.route.path, `${path} is internal or for operators and must not be routed (routed to ${out.cluster})`);
    else if ("direct" in out && out.direct < 400) f.fail("route_config", `${path} must be answered with an error, got ${out.direct}`);
  }
  const expected = new Map(EDGE_METHODS.map((m) => [m.path, m.cluster]));
  for (const path of paths(services, isPublic)) {
    const want = expected.get(path) ?? expected.get(path.slice(0, path.lastIndexOf("/") + 1));
    const out = f.outcome(path);
    if (!want) f.fail("route_config", `${path} is public but has no place in the edge's routing (envoy/src/routes.ts)`);
    else if (!("cluster" in out)) f.fail("route_config", `${path} is not routed (expected cluster ${want})`);
    else if (out.cluster !== want) f.fail(`${out.route.path}.route.cluster`, `${path} goes to ${out.cluster}, expected ${want}`);
  }
}

function checkTranscoder(f: BootstrapFacts, contract: Contract) {
  const t = f.httpFilters().find((x) => x.value.name === FILTER.transcoder);
  if (!t) return;
  const c = t.value.typed_config ?? {};
  if (c.auto_mapping === true) f.fail(`${t.path}.typed_config.auto_mapping`, "auto_mapping would expose every method of the transcoded services as JSON");
  for (const path of contract.httpRules) {
    const service = path.split("/")[1];
    if ((c.services ?? []).includes(service) && !READ_METHODS.includes(path)) {
      f.fail(`${t.path}.typed_config.services`, `${path} has an HTTP rule in proto/ but is not a public read: it must not be transcoded`);
    }
  }
}

function checkRetries(f: BootstrapFacts) {
  for (const vh of f.virtualHosts()) {
    if (vh.value.retry_policy) f.fail(`${vh.path}.retry_policy`, "no retries on the virtual host: each route says its own");
  }
  for (const r of f.routes()) {
    const policy = r.value.route?.retry_policy;
    if (!policy) continue;
    const path = r.value.match?.path;
    const read = READ_METHODS.includes(path);
    // A refused stream never reached the service: any call may be sent again. Only reads may be sent again after UNAVAILABLE.
    const allowed = read ? [RETRY_ON_UNAVAILABLE, RETRY_ON_REFUSED] : [RETRY_ON_REFUSED];
    for (const on of String(policy.retry_on ?? "")
      .split(",")
      .map((s) => s.trim())) {
      if (allowed.includes(on)) continue;
      f.fail(
        `${r.path}.route.retry_policy.retry_on`,
        on === RETRY_ON_UNAVAILABLE
          ? `${path ?? JSON.stringify(r.value.match)} is not an idempotent read and must not be retried on "${on}"`
          : `retries only on ${allowed.map((a) => `"${a}"`).join(" or ")}, not "${on}"`,
      );
    }
  }
}

/** All semantic checks of one variant's bootstrap. */
export function checkSemantics(doc: Obj, variant: Variant, contract: Contract): ConfigIssue[] {
  const f = new BootstrapFacts(doc);
  checkClustersExist(f);
  checkEndpoints(f, variant);
  checkListenerLimits(f);
  checkConnectionManager(f);
  checkHttpFilters(f);
  checkPlaceOrder(f);
  checkClusterLimits(f);
  checkRouting(f, contract.services);
  checkTranscoder(f, contract);
  checkRetries(f);
  return f.issues;
}
