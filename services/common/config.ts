// Configuration of every Seckill Mesh process, read once from the environment,
// typed and validated. A missing or bad value stops start-up with a message
// naming the variable.
import { MAX_METADATA_BYTES } from "@seckill/sdk";

export interface Config {
  /** Prefix of every stream, subject, consumer and Redis key: isolates stacks and test runs. */
  namespace: string;
  /** The one Redis server; with redisClusterNodes, the credentials and TLS (rediss:) for every cluster node. */
  redisUrl: string;
  /** Seed nodes (host:port) of a Redis Cluster; empty: the one server at redisUrl. */
  redisClusterNodes: string[];
  /** One NATS server, or several separated by commas (the client picks one and fails over to the others). */
  natsUrl: string;
  /**
   * Copies of each JetStream stream (and of its consumers, which take the
   * stream's): 1 on a single server; 3 on a three-node cluster, so an
   * acknowledged event survives the loss of one node. Applied to existing streams too.
   */
  jetStreamReplicas: number;
  /** The service's own database and role. */
  databaseUrl: string;
  /** A superuser connection used only to create the role and database. */
  databaseAdminUrl: string;
  inventoryAddr: string;
  orderAddr: string;
  writerAddr: string;
  /** The gateway's gRPC listen address (RateLimitService for Envoy). */
  gatewayAddr: string;
  /** The gateway's rate limit file (domain, descriptors, limits); a relative path is from the repository root. */
  rateLimitConfig: string;
  /** Counters over their limit the gateway remembers until their window ends (answered without Redis); 0: none. */
  rateLimitLocalCacheKeys: number;
  /**
   * The RPC group this process belongs to: `default`, or `flash` for the
   * dedicated flash-sale group the edge sends purchases, sale status and order
   * watches to. Same code; the group has its own processes, ports and limits.
   */
  serviceGroup: "default" | "flash";
  /** Where `npm start` runs the flash-sale group's inventory and order services. */
  flashInventoryAddr: string;
  flashOrderAddr: string;
  /** Largest gRPC message accepted or sent, in bytes. */
  grpcMaxMessageBytes: number;
  /** Largest request metadata (HTTP/2 header list) a server accepts, in bytes; a larger call alone is reset. */
  grpcMaxMetadataBytes: number;
  /**
   * Age (±10 %) after which inventory's server asks a client connection to go
   * away (GOAWAY): the order services' channels then reconnect and resolve the
   * name again, so inventory replicas added since get their share of calls.
   */
  grpcMaxConnectionAgeMs: number;
  /** How long calls in progress on a connection past its age may still finish before it is closed; at least CALL_DEADLINE_MS. */
  grpcMaxConnectionAgeGraceMs: number;
  /** Deadline of every outbound gRPC call. */
  callDeadlineMs: number;
  /** How long a JetStream publish may wait for its PubAck. */
  publishTimeoutMs: number;
  /** NOT_SERVING is reported this long before the server stops taking calls. */
  drainDelayMs: number;
  /** How long start-up waits for Redis, NATS and Postgres to become reachable before it fails. */
  startupTimeoutMs: number;
  /** Time allowed for in-flight calls to finish on shutdown before they are cut. */
  shutdownGraceMs: number;
  /** Unary calls one process works on at once; more are refused at once with UNAVAILABLE. */
  maxInFlight: number;
  /** Most purchases merged into one Reserve call. */
  reserveBatchMax: number;
  /** Most reservation events written to Postgres in one transaction. */
  writerBatchSize: number;
  /** How long a batch that is not full may wait for more events before it is written. */
  writerLingerMs: number;
  /** Transactions the writer runs at once: the cap on the writer's Postgres load. */
  writerConcurrency: number;
  /**
   * Time a delivered event may go without an ack or an in-progress report
   * before JetStream redelivers it. The writer reports every event it holds in
   * progress every third of it, so this is how long the events a dead writer
   * held wait before another writer gets them.
   */
  writerAckWaitMs: number;
  /** Deliveries of one event before it is given up as poison. */
  writerMaxDeliver: number;
  dbPoolMax: number;
  /**
   * How often inventory checks that each open sale's Redis state is there and
   * current (and rebuilds a lost one), and each order process that the sales it
   * answers SOLD_OUT for are still sold out with the winners it loaded.
   */
  redisCheckIntervalMs: number;
  /** Watchers one order-service process serves at once. */
  maxOrderWatchers: number;
  /** WatchOrder streams one client connection may hold open at once. */
  maxWatchesPerConnection: number;
  /** How often each order process expires CREATED orders past pay_by and relays unpublished releases. */
  expiryIntervalMs: number;
  /** A released order whose StockReleased event is still unpublished this long after its release is republished by the relay. */
  releaseRelayAfterMs: number;
  logLevel: "debug" | "info" | "warn" | "error";
  /** How often the inventory sweeper looks for reservations without an order (0: never). */
  sweepIntervalMs: number;
  /** Age after which a reservation with no order is republished to JetStream. */
  sweepAfterMs: number;
  /** Age after which a reservation still without an order is reported (logged at error) and no longer swept. */
  sweepReportAfterMs: number;
  /** Reservations the sweeper reads, checks in Postgres and republishes at a time. */
  sweepBatchSize: number;
  /** Where the gateway serves its purchase-token keys (JWKS) over plain HTTP. */
  gatewayJwksAddr: string;
  /** Directory of the gateway's purchase-token signing keys, `<kid>.pem` (PKCS#8, P-256). */
  purchaseTokenKeysDir: string;
  /** Lifetime of a purchase token. */
  purchaseTokenTtlMs: number;
  /** Where the order service fetches the keys that verify purchase tokens. */
  purchaseTokenJwksUrl: string;
  /** PlaceOrder without a purchase token is refused; when false a missing token is accepted (a present one is always verified). */
  purchaseTokenRequired: boolean;
  /** How long a challenge can be answered. */
  challengeTtlMs: number;
  /** Where the process serves GET /metrics (Prometheus text format); empty: not served. */
  metricsAddr: string;
  /** Where spans are exported over OTLP/HTTP (`<endpoint>/v1/traces`); empty: none recorded, an incoming traceparent is still passed on and logged. */
  otlpEndpoint: string;
}

type Env = Record<string, string | undefined>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join("\n  ")}`);
  }
}

const NAMESPACE_RE = /^[a-z][a-z0-9_-]{0,31}$/;
const ADDR_RE = /^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/;

/** The servers of a comma-separated list, e.g. NATS_URL=nats://a:4222,nats://b:4222. */
export function urlList(value: string): string[] {
  return value.split(",").map((u) => u.trim());
}

export function readConfig(env: Env = process.env): Config {
  const problems: string[] = [];

  const str = (name: string, fallback: string, check?: (v: string) => string | undefined): string => {
    const value = env[name] ?? fallback;
    const problem = check?.(value);
    if (problem) problems.push(`${name}=${JSON.stringify(value)}: ${problem}`);
    return value;
  };
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === "") return fallback;
    const value = Number(raw);
    if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
      problems.push(`${name}=${JSON.stringify(raw)}: expected a whole number from ${min} to ${max}`);
      return fallback;
    }
    return value;
  };
  const url =
    (...schemes: string[]) =>
    (v: string) => {
      try {
        const parsed = new URL(v);
        return schemes.includes(parsed.protocol) ? undefined : `expected a ${schemes.join(" or ")}// URL`;
      } catch {
        return "not a URL";
      }
    };
  const addr = (v: string) => (ADDR_RE.test(v) ? undefined : "expected host:port");

  const config: Config = {
    namespace: str("SECKILL_NAMESPACE", "seckill", (v) => (NAMESPACE_RE.test(v) ? undefined : "expected 1-32 characters of [a-z0-9_-], starting with a letter")),
    redisUrl: str("REDIS_URL", "redis://127.0.0.1:6379", url("redis:", "rediss:")),
    redisClusterNodes: str("REDIS_CLUSTER_NODES", "", (v) =>
      v === "" || v.split(",").every((node) => ADDR_RE.test(node.trim())) ? undefined : "expected host:port,host:port,... or empty for one Redis server",
    )
      .split(",")
      .map((node) => node.trim())
      .filter((node) => node !== ""),
    natsUrl: str("NATS_URL", "nats://127.0.0.1:4222", (v) => urlList(v).map(url("nats:", "tls:")).find(Boolean)),
    jetStreamReplicas: int("JETSTREAM_REPLICAS", 1, 1, 5),
    databaseUrl: str("DATABASE_URL", "postgres://seckill:seckill@127.0.0.1:5432/seckill", url("postgres:", "postgresql:")),
    databaseAdminUrl: str("DATABASE_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres", url("postgres:", "postgresql:")),
    inventoryAddr: str("INVENTORY_ADDR", "127.0.0.1:50051", addr),
    orderAddr: str("ORDER_ADDR", "127.0.0.1:50052", addr),
    writerAddr: str("WRITER_ADDR", "127.0.0.1:50053", addr),
    gatewayAddr: str("GATEWAY_ADDR", "127.0.0.1:50054", addr),
    rateLimitConfig: str("RATE_LIMIT_CONFIG", "gateway/ratelimit.yaml", (v) => (v.trim() === "" ? "expected a file path" : undefined)),
    rateLimitLocalCacheKeys: int("RATE_LIMIT_LOCAL_CACHE_KEYS", 100_000, 0, 10_000_000),
    serviceGroup: str("SERVICE_GROUP", "default", (v) => (v === "default" || v === "flash" ? undefined : "expected default or flash")) as Config["serviceGroup"],
    flashInventoryAddr: str("FLASH_INVENTORY_ADDR", "127.0.0.1:50055", addr),
    flashOrderAddr: str("FLASH_ORDER_ADDR", "127.0.0.1:50056", addr),
    grpcMaxMessageBytes: int("GRPC_MAX_MESSAGE_BYTES", 256 * 1024, 1024, 16 * 1024 * 1024),
    grpcMaxMetadataBytes: int("GRPC_MAX_METADATA_BYTES", MAX_METADATA_BYTES, 4096, MAX_METADATA_BYTES),
    grpcMaxConnectionAgeMs: int("GRPC_MAX_CONNECTION_AGE_MS", 30_000, 100, 86_400_000),
    grpcMaxConnectionAgeGraceMs: int("GRPC_MAX_CONNECTION_AGE_GRACE_MS", 5000, 0, 600_000),
    callDeadlineMs: int("CALL_DEADLINE_MS", 2000, 10, 60_000),
    publishTimeoutMs: int("PUBLISH_TIMEOUT_MS", 2000, 10, 60_000),
    drainDelayMs: int("SHUTDOWN_DRAIN_DELAY_MS", 0, 0, 120_000),
    shutdownGraceMs: int("SHUTDOWN_GRACE_MS", 10_000, 0, 300_000),
    startupTimeoutMs: int("STARTUP_TIMEOUT_MS", 60_000, 0, 600_000),
    maxInFlight: int("MAX_IN_FLIGHT", 256, 1, 1_000_000),
    reserveBatchMax: int("RESERVE_BATCH_MAX", 256, 1, 512),
    writerBatchSize: int("WRITER_BATCH_SIZE", 500, 1, 5000),
    writerLingerMs: int("WRITER_LINGER_MS", 50, 0, 10_000),
    writerConcurrency: int("WRITER_CONCURRENCY", 2, 1, 64),
    writerAckWaitMs: int("WRITER_ACK_WAIT_MS", 3000, 1000, 3_600_000),
    writerMaxDeliver: int("WRITER_MAX_DELIVER", 20, 2, 1000),
    dbPoolMax: int("DB_POOL_MAX", 10, 1, 200),
    maxOrderWatchers: int("MAX_ORDER_WATCHERS", 10_000, 1, 1_000_000),
    maxWatchesPerConnection: int("MAX_WATCHES_PER_CONNECTION", 128, 1, 1_000_000),
    expiryIntervalMs: int("EXPIRY_INTERVAL_MS", 1000, 10, 3_600_000),
    releaseRelayAfterMs: int("RELEASE_RELAY_AFTER_MS", 5000, 0, 3_600_000),
    logLevel: str("LOG_LEVEL", "info", (v) => (["debug", "info", "warn", "error"].includes(v) ? undefined : "expected debug, info, warn or error")) as Config["logLevel"],
    sweepIntervalMs: int("SWEEP_INTERVAL_MS", 2000, 0, 3_600_000),
    sweepAfterMs: int("SWEEP_AFTER_MS", 5000, 100, 3_600_000),
    sweepReportAfterMs: int("SWEEP_REPORT_AFTER_MS", 60_000, 100, 86_400_000),
    sweepBatchSize: int("SWEEP_BATCH_SIZE", 500, 1, 10_000),
    redisCheckIntervalMs: int("REDIS_CHECK_INTERVAL_MS", 500, 50, 60_000),
    gatewayJwksAddr: str("GATEWAY_JWKS_ADDR", "127.0.0.1:50058", addr),
    purchaseTokenKeysDir: str("PURCHASE_TOKEN_KEYS_DIR", ".local/keys", (v) => (v.trim() === "" ? "expected a directory path" : undefined)),
    purchaseTokenTtlMs: int("PURCHASE_TOKEN_TTL_MS", 60_000, 1000, 3_600_000),
    purchaseTokenJwksUrl: str("PURCHASE_TOKEN_JWKS_URL", "http://127.0.0.1:50058/.well-known/jwks.json", url("http:", "https:")),
    purchaseTokenRequired: str("PURCHASE_TOKEN_REQUIRED", "false", (v) => (v === "true" || v === "false" ? undefined : "expected true or false")) === "true",
    challengeTtlMs: int("CHALLENGE_TTL_MS", 120_000, 100, 3_600_000),
    metricsAddr: str("METRICS_ADDR", "", (v) => (v === "" || ADDR_RE.test(v) ? undefined : "expected host:port, or empty for no metrics endpoint")),
    otlpEndpoint: str("OTEL_EXPORTER_OTLP_ENDPOINT", "", (v) => (v === "" ? undefined : url("http:", "https:")(v))),
  };
  // An even count adds a copy without tolerating one more failure (a majority of 4 is 3).
  if (config.jetStreamReplicas % 2 === 0) problems.push(`JETSTREAM_REPLICAS=${JSON.stringify(env.JETSTREAM_REPLICAS)}: expected 1, 3 or 5`);
  // A call's deadline passes before its connection is closed under it: an aged connection never cuts a call still awaited.
  if (config.grpcMaxConnectionAgeGraceMs < config.callDeadlineMs) {
    problems.push(`GRPC_MAX_CONNECTION_AGE_GRACE_MS=${config.grpcMaxConnectionAgeGraceMs}: expected at least CALL_DEADLINE_MS (${config.callDeadlineMs})`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}
