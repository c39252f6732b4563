// The numbers of every limit the edge enforces, per variant. Durations are in
// milliseconds here and rendered as protobuf Duration strings ("1.5s").

export interface EdgeLimits {
  /** Listener: open downstream connections (connection_limit network filter); more are closed at once. */
  maxConnections: number;
  /** Overload manager: connections across every listener of the process (global_downstream_max_connections). */
  globalMaxConnections: number;
  /** Overload manager: heap size (fixed_heap monitor); shrink at 90 %, stop accepting requests at 95 %. */
  maxHeapBytes: number;
  /** Downstream HTTP/2: streams per connection and flow-control windows. */
  maxConcurrentStreams: number;
  initialStreamWindowBytes: number;
  initialConnectionWindowBytes: number;
  /** Request headers, in KiB, and their count. */
  maxRequestHeadersKb: number;
  maxHeadersCount: number;
  /** A downstream connection without streams is closed after this long. */
  connectionIdleTimeoutMs: number;
  /** A stream with no bytes either way is reset after this long (every route but WatchOrder). */
  streamIdleTimeoutMs: number;
  /** Time allowed to receive the request headers of a new stream. */
  requestHeadersTimeoutMs: number;
  /** Unary calls: the route timeout, the longest wait for the upstream (then UNAVAILABLE; see routeAction in routes.ts). */
  unaryTimeoutMs: number;
  /** PlaceOrder's route timeout, as unaryTimeoutMs. */
  placeOrderTimeoutMs: number;
  /** WatchOrder: longest stream, and longest silence on it. */
  watchMaxDurationMs: number;
  watchIdleTimeoutMs: number;
  /** Read routes: attempts after the first (on UNAVAILABLE only) and the time of each try. */
  readRetries: number;
  readPerTryTimeoutMs: number;
  /** PlaceOrder token bucket at this Envoy (local_ratelimit): burst and refill per second. */
  placeOrderBurst: number;
  placeOrderPerSecond: number;
  /** Global rate limit (gateway RateLimitService): how long Envoy waits for its answer before letting the call through. */
  rateLimitTimeoutMs: number;
  /** Every upstream cluster: circuit breakers. */
  upstreamMaxConnections: number;
  upstreamMaxPendingRequests: number;
  upstreamMaxRequests: number;
  upstreamMaxRetries: number;
  upstreamConnectTimeoutMs: number;
  /** Upstream HTTP/2 streams per connection (at most the services' MAX_WATCHES_PER_CONNECTION). */
  upstreamMaxConcurrentStreams: number;
}

export const PRODUCTION_LIMITS: EdgeLimits = {
  maxConnections: 20_000,
  globalMaxConnections: 25_000,
  maxHeapBytes: 1024 * 1024 * 1024,
  maxConcurrentStreams: 100,
  initialStreamWindowBytes: 64 * 1024,
  initialConnectionWindowBytes: 1024 * 1024,
  maxRequestHeadersKb: 16,
  maxHeadersCount: 64,
  connectionIdleTimeoutMs: 300_000,
  streamIdleTimeoutMs: 30_000,
  requestHeadersTimeoutMs: 10_000,
  unaryTimeoutMs: 5_000,
  placeOrderTimeoutMs: 3_000,
  watchMaxDurationMs: 300_000,
  watchIdleTimeoutMs: 300_000,
  readRetries: 2,
  readPerTryTimeoutMs: 1_000,
  placeOrderBurst: 2_000,
  placeOrderPerSecond: 2_000,
  rateLimitTimeoutMs: 20,
  upstreamMaxConnections: 1_024,
  upstreamMaxPendingRequests: 1_024,
  upstreamMaxRequests: 8_192,
  upstreamMaxRetries: 64,
  upstreamConnectTimeoutMs: 1_000,
  // Below the services' MAX_WATCHES_PER_CONNECTION (128): Envoy carries many
  // clients' WatchOrder streams over its upstream connections, and opens a new
  // one at this many streams, so the per-connection watch bound is never met.
  upstreamMaxConcurrentStreams: 100,
};

/** npm start on one machine: the same shape with numbers a laptop (and the live tests) can reach. */
export const LOCAL_LIMITS: EdgeLimits = {
  ...PRODUCTION_LIMITS,
  maxConnections: 256,
  globalMaxConnections: 512,
  maxHeapBytes: 256 * 1024 * 1024,
  placeOrderBurst: 200,
  placeOrderPerSecond: 200,
  upstreamMaxConnections: 128,
  upstreamMaxPendingRequests: 256,
  upstreamMaxRequests: 1_024,
  upstreamMaxRetries: 16,
};

/** A protobuf JSON Duration. */
export const duration = (ms: number): string => {
  const s = Math.floor(ms / 1000);
  const rest = ms % 1000;
  return rest === 0 ? `${s}s` : `${s}.${String(rest).padStart(3, "0").replace(/0+$/, "")}s`;
};
