// Prometheus metrics of one service: a registry per app (two services started
// in one process, as the tests do, never share a metric), every sample labelled
// with the process's service and group, the families each concern records, and
// GET /metrics over plain HTTP on METRICS_ADDR. Recording is cheap: label
// children are resolved once and kept (a sale's stock child until its series
// is dropped).
import { status } from "@grpc/grpc-js";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Config } from "./config.js";
import { serveHttp, type HttpEndpoint } from "./http-endpoint.js";
import type { Logger } from "./log.js";
import { errorMessage } from "./error-message.js";

export const METRIC_PREFIX = "seckill_";

/** From a fraction of a millisecond (a refusal, a shortcut) to seconds (a stuck dependency). */
export const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const BATCH_BUCKETS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000];
/** A sale's stock-left series is dropped after this long without a reservation answer for it. */
export const STOCK_IDLE_MS = 3600_000;

/** gRPC status code -> its name, the `code` label. */
const CODE_NAMES: string[] = [];
for (const [name, value] of Object.entries(status)) if (typeof value === "number") CODE_NAMES[value] = name;

/** One gRPC method's series, resolved once. */
export interface MethodMetrics {
  /** A call ended with `code`; `seconds` is its duration (omitted for streams). */
  done(code: number, seconds?: number): void;
}

export interface GrpcMetrics {
  method(name: string): MethodMetrics;
  /** A call refused with a reason from the contract. */
  rejected(reason: string): void;
}

export interface InventoryMetrics {
  /** A reservation attempt answered: OK, REPLAY or the refusal's reason. */
  reservation(outcome: string): void;
  /** Stock left in a sale as a reservation answer reported it. */
  stockLeft(saleId: string, left: number): void;
  /** The sale no longer takes purchases: its series goes. */
  saleEnded(saleId: string): void;
  /** Sales whose Redis state is lost and not rebuilt yet. */
  redisLostSales(count: number): void;
}

export interface WriterMetrics {
  /** A batch acknowledged: the reservations it carried. */
  batch(size: number): void;
  /** One transaction committed. */
  commit(seconds: number): void;
  deadLetters(reason: string, count: number): void;
  /** The writer consumer's events not yet delivered plus those delivered and not acked. */
  queueLag(messages: number): void;
}

export type OrderTransition = "created" | "paid" | "cancelled" | "expired";

export interface OrderMetrics {
  transitioned(transition: OrderTransition, count?: number): void;
}

export type RateLimitResult = "OK" | "OVER_LIMIT" | "ERROR";

export interface GatewayMetrics {
  rateLimitCheck(result: RateLimitResult): void;
  /** Descriptors answered OVER_LIMIT from the gateway's over-limit cache, without Redis. */
  overLimitCached(descriptors: number): void;
  tokenIssued(): void;
}

export interface Metrics {
  readonly registry: Registry;
  readonly grpc: GrpcMetrics;
  inventory(): InventoryMetrics;
  writer(): WriterMetrics;
  orders(): OrderMetrics;
  gateway(): GatewayMetrics;
  /** A gauge read when scraped (e.g. the open order watchers). */
  observe(name: string, help: string, read: () => number): void;
}

export interface MetricsOptions {
  service: string;
  group: string;
  /** Also the process metrics (CPU, memory, event loop, GC): on when the endpoint is served. */
  processMetrics?: boolean;
  nowMs?: () => number;
}

/** A value per label, resolved on first use and kept. */
function children<T>(make: (label: string) => T): (label: string) => T {
  const cache = new Map<string, T>();
  return (label) => {
    let child = cache.get(label);
    if (child === undefined) {
      child = make(label);
      cache.set(label, child);
    }
    return child;
  };
}

function once<T>(make: () => T): () => T {
  let value: T | undefined;
  return () => (value ??= make());
}

export function createMetrics(options: MetricsOptions): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service: options.service, group: options.group });
  if (options.processMetrics) collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  const nowMs = options.nowMs ?? Date.now;
  const registers = [registry];
  const name = (n: string) => METRIC_PREFIX + n;

  const grpc = ((): GrpcMetrics => {
    const requests = new Counter({ name: name("grpc_requests_total"), help: "gRPC calls served, by method and status code.", labelNames: ["method", "code"], registers });
    const duration = new Histogram({
      name: name("grpc_request_duration_seconds"),
      help: "Time to answer a unary gRPC call, by method.",
      labelNames: ["method"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    const rejections = new Counter({ name: name("rejections_total"), help: "Calls refused, by the reason from the contract.", labelNames: ["reason"], registers });
    const rejected = children((reason) => rejections.labels(reason));
    const method = children((m): MethodMetrics => {
      const timer = duration.labels(m);
      const byCode: Counter.Internal[] = [];
      return {
        done(code, seconds) {
          byCode[code] ??= requests.labels(m, CODE_NAMES[code] ?? String(code));
          byCode[code].inc();
          if (seconds !== undefined) timer.observe(seconds);
        },
      };
    });
    return { method, rejected: (reason) => rejected(reason).inc() };
  })();

  const inventory = once((): InventoryMetrics => {
    const reservations = new Counter({
      name: name("reservations_total"),
      help: "Reservation attempts answered by inventory, by outcome (OK, REPLAY or the refusal's reason).",
      labelNames: ["outcome"],
      registers,
    });
    const outcome = children((o) => reservations.labels(o));
    /** The sales with a series: when each was last reported, and its child (dropped with the series). */
    const seen = new Map<string, { at: number; child: Gauge.Internal<"sale_id"> }>();
    const stock = new Gauge({
      name: name("stock_left"),
      help: "Units left in a sale, as the latest reservation answer reported it (sales seen in the last hour).",
      labelNames: ["sale_id"],
      registers,
      collect() {
        const idleBefore = nowMs() - STOCK_IDLE_MS;
        for (const [saleId, { at }] of seen) {
          if (at < idleBefore) {
            seen.delete(saleId);
            this.remove(saleId);
          }
        }
      },
    });
    const lost = new Gauge({ name: name("redis_lost_sales"), help: "Open sales whose Redis state is lost and not rebuilt yet.", registers });
    return {
      reservation: (o) => outcome(o).inc(),
      stockLeft(saleId, left) {
        let sale = seen.get(saleId);
        if (sale) sale.at = nowMs();
        else {
          sale = { at: nowMs(), child: stock.labels(saleId) };
          seen.set(saleId, sale);
        }
        sale.child.set(left);
      },
      saleEnded(saleId) {
        if (seen.delete(saleId)) stock.remove(saleId);
      },
      redisLostSales: (count) => lost.set(count),
    };
  });

  const writer = once((): WriterMetrics => {
    const batchSize = new Histogram({
      name: name("writer_batch_size"),
      help: "Reservations in each batch the order writer wrote and acknowledged.",
      buckets: BATCH_BUCKETS,
      registers,
    });
    const commits = new Histogram({
      name: name("writer_commit_duration_seconds"),
      help: "Time of each order writer transaction that committed.",
      buckets: LATENCY_BUCKETS,
      registers,
    });
    const deadLetters = new Counter({
      name: name("writer_dead_letters_total"),
      help: "Dead letters recorded by the order writer, by reason.",
      labelNames: ["reason"],
      registers,
    });
    const lag = new Gauge({
      name: name("queue_lag_messages"),
      help: "Reservation messages the order writer has not acknowledged yet (pending plus delivered and unacknowledged).",
      registers,
    });
    const dead = children((reason) => deadLetters.labels(reason));
    return {
      batch: (size) => batchSize.observe(size),
      commit: (seconds) => commits.observe(seconds),
      deadLetters: (reason, count) => dead(reason).inc(count),
      queueLag: (messages) => lag.set(messages),
    };
  });

  const orders = once((): OrderMetrics => {
    const transitions = new Counter({
      name: name("orders_total"),
      help: "Orders entering a status: created (written by the order writer), paid, cancelled, expired.",
      labelNames: ["transition"],
      registers,
    });
    const transition = children((t) => transitions.labels(t));
    return { transitioned: (t, count = 1) => transition(t).inc(count) };
  });

  const gateway = once((): GatewayMetrics => {
    const checks = new Counter({
      name: name("ratelimit_checks_total"),
      help: "Rate limit checks answered to Envoy, by result (OK, OVER_LIMIT, ERROR).",
      labelNames: ["result"],
      registers,
    });
    const cached = new Counter({
      name: name("ratelimit_over_limit_cached_total"),
      help: "Descriptors answered OVER_LIMIT from the over-limit cache (counters already over their limit this window), without Redis.",
      registers,
    });
    const tokens = new Counter({ name: name("tokens_issued_total"), help: "Purchase tokens issued.", registers });
    const result = children((r) => checks.labels(r));
    return { rateLimitCheck: (r) => result(r).inc(), overLimitCached: (n) => cached.inc(n), tokenIssued: () => tokens.inc() };
  });

  return {
    registry,
    grpc,
    inventory,
    writer,
    orders,
    gateway,
    observe(n, help, read) {
      new Gauge({
        name: name(n),
        help,
        registers,
        collect() {
          this.set(read());
        },
      });
    },
  };
}

/** A service's metrics as its app builds them: labelled with its name and RPC group, process metrics when served. */
export const metricsFor = (config: Config, service: string): Metrics => createMetrics({ service, group: config.serviceGroup, processMetrics: config.metricsAddr !== "" });

export interface MetricsEndpoint {
  /** host:port actually bound (the port the OS chose for port 0). */
  address: string;
  close(): Promise<void>;
}

/** GET /metrics in the Prometheus text format on `address` (host:port); anything else is 404. */
export async function serveMetrics(registry: Registry, address: string, log: Logger): Promise<MetricsEndpoint> {
  let endpoint: HttpEndpoint;
  try {
    endpoint = await serveHttp(address, {
      path: "/metrics",
      notFound: "not found: metrics are at /metrics\n",
      get(req, res) {
        registry.metrics().then(
          (text) => res.writeHead(200, { "content-type": registry.contentType }).end(req.method === "HEAD" ? undefined : text),
          (error: unknown) => {
            log.error("metrics collection failed", { err: error instanceof Error ? error : String(error) });
            res.writeHead(500, { "content-type": "text/plain" }).end("metrics collection failed\n");
          },
        );
      },
      onError: (error) => log.warn("metrics endpoint error", { err: error.message }),
    });
  } catch (error) {
    throw new Error(`cannot serve metrics on ${address}: ${errorMessage(error)}`);
  }
  return { address: endpoint.address, close: () => endpoint.close(true) };
}
