// The backend as the CLI sees it: SDK clients for the public services (sales,
// orders, and the gateway's AccessService), direct and, for a buyer's calls,
// through the edge; a reachability probe of those a command needs, run before
// it, and readable gRPC errors.
import { credentials, status, type ServiceError } from "@grpc/grpc-js";
import { AccessServiceClient, OrderServiceClient, SaleServiceClient, callUnary, rejectionOf, userMetadata } from "@seckill/sdk";
import { edgeProblem } from "./edge.js";

export interface BackendOptions {
  /** host:port of the inventory service (SaleService). */
  inventory: string;
  /** host:port of the order service (OrderService). */
  order: string;
  /** host:port of the gateway (AccessService: purchase tokens). */
  gateway: string;
  /** Deadline of each call, in milliseconds. */
  deadline: number;
  /**
   * host:port of the edge (Envoy): when set, the buyer clients dial it instead
   * of the services; the direct clients are unchanged.
   */
  edge?: string;
}

/** An error the CLI reports as one line on stderr, with this exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = "CliError";
  }
}

/** The clients of a buyer's calls: through the edge, or the direct ones. */
export interface BuyerClients {
  /** "edge" when they dial the edge. */
  readonly route: "edge" | "direct";
  readonly sales: SaleServiceClient;
  readonly orders: OrderServiceClient;
  readonly access: AccessServiceClient;
  /** Where a new OrderService channel of a buyer dials (a winner watching its order over its own connection). */
  readonly orderAddress: string;
}

export interface Backend {
  readonly options: BackendOptions;
  /** Direct to the services: operator calls and the checks' reads. */
  readonly sales: SaleServiceClient;
  readonly orders: OrderServiceClient;
  readonly access: AccessServiceClient;
  /** A buyer's calls: through the edge when options.edge is set, else the direct clients. */
  readonly buyer: BuyerClients;
  close(): void;
}

export function connect(options: BackendOptions): Backend {
  const clients = new Map<string, { close(): void }>();
  const once = <T extends { close(): void }>(key: string, make: () => T): T => {
    if (!clients.has(key)) clients.set(key, make());
    return clients.get(key) as T;
  };
  const insecure = credentials.createInsecure();
  // The three clients at `at`, each made on first use and closed with the backend; `extra` alongside.
  const lazyClients = <T extends object>(tag: string, at: { inventory: string; order: string; gateway: string }, extra: T) => ({
    ...extra,
    get sales() {
      return once(`${tag} sales`, () => new SaleServiceClient(at.inventory, insecure));
    },
    get orders() {
      return once(`${tag} orders`, () => new OrderServiceClient(at.order, insecure));
    },
    get access() {
      return once(`${tag} access`, () => new AccessServiceClient(at.gateway, insecure));
    },
  });
  const edge = options.edge;
  const buyer: BuyerClients = edge
    ? lazyClients("edge", { inventory: edge, order: edge, gateway: edge }, { route: "edge" as const, orderAddress: edge })
    : lazyClients("direct", options, { route: "direct" as const, orderAddress: options.order });
  return lazyClients<Pick<Backend, "options" | "buyer" | "close">>("direct", options, {
    options,
    buyer,
    close() {
      for (const client of clients.values()) client.close();
    },
  });
}

/** What a command may need answering before it runs; "edge": the edge and the services it routes a buyer's calls to. */
export type ServiceName = "inventory" | "order" | "gateway" | "edge";

/** A syntactically valid id no sale has: GetSaleStatus answers NOT_FOUND. */
const PROBE_SALE_ID = "00000000000000000000000000";
const PROBE_TIMEOUT_MS = 2000;

export const isGrpcError = (error: unknown): error is ServiceError => typeof error === "object" && error !== null && "code" in error && "details" in error && "metadata" in error;

/**
 * Makes one cheap call to each service with a short deadline. Any answer from
 * the service itself (NOT_FOUND, INVALID_ARGUMENT) means it is there; no
 * connection or no answer in time becomes a CliError telling how to start it.
 */
export async function checkReachable(backend: Backend, services: ServiceName[]): Promise<void> {
  const deadlineMs = Math.min(backend.options.deadline, PROBE_TIMEOUT_MS);
  const probes: Record<Exclude<ServiceName, "edge">, () => Promise<unknown>> = {
    inventory: () => callUnary(backend.sales, "getSaleStatus", { saleId: PROBE_SALE_ID }, { deadlineMs }),
    // A malformed order id is refused before any lookup: no load, no dependency involved.
    order: () => callUnary(backend.orders, "getOrder", { orderId: "probe" }, { metadata: userMetadata("seckill-cli-probe"), deadlineMs }),
    // Likewise a malformed sale id.
    gateway: () => callUnary(backend.access, "getChallenge", { saleId: "probe" }, { metadata: userMetadata("seckill-cli-probe"), deadlineMs }),
  };
  const settle = (call: () => Promise<unknown>) =>
    call().then(
      () => undefined,
      (e: unknown) => e,
    );
  const direct = services.filter((s): s is Exclude<ServiceName, "edge"> => s !== "edge");
  const [results, throughEdge] = await Promise.all([
    Promise.all(direct.map(async (name) => probeProblem(name, backend.options[name], await settle(probes[name])))),
    services.includes("edge") ? edgeProblems(backend, deadlineMs, settle) : [],
  ]);
  results.push(...throughEdge);
  // One line for a missing edge, whatever it routes to.
  const found = [...new Set(results.filter((p): p is string => p !== undefined))];
  if (found.length > 0) throw new CliError(found.join("\n"));
}

/**
 * A cheap call through the edge to each group a buyer's calls reach: the
 * flash-sale inventory (GetSaleStatus of a sale nobody has: NOT_FOUND), the
 * flash-sale order service (WatchOrder of a malformed id: INVALID_ARGUMENT) and
 * the gateway (GetChallenge of a malformed sale id: INVALID_ARGUMENT).
 */
async function edgeProblems(backend: Backend, deadlineMs: number, settle: (call: () => Promise<unknown>) => Promise<unknown>): Promise<(string | undefined)[]> {
  const { buyer } = backend;
  const address = backend.options.edge ?? buyer.orderAddress;
  const metadata = userMetadata("seckill-cli-probe");
  const watch = () =>
    new Promise<void>((resolve, reject) => {
      const call = buyer.orders.watchOrder({ orderId: "probe" }, metadata, { deadline: Date.now() + deadlineMs });
      call.on("data", () => undefined);
      call.on("error", reject);
      call.on("end", resolve);
    });
  const probes: [string, () => Promise<unknown>][] = [
    ["the flash-sale inventory service", () => callUnary(buyer.sales, "getSaleStatus", { saleId: PROBE_SALE_ID }, { deadlineMs })],
    ["the flash-sale order service", watch],
    ["the gateway", () => callUnary(buyer.access, "getChallenge", { saleId: "probe" }, { metadata, deadlineMs })],
  ];
  return Promise.all(probes.map(async ([behind, call]) => edgeProblem(address, behind, await settle(call))));
}

/** A service the CLI calls directly: the public ones, and the order writer (DeadLetterService, --writer). */
export type CalledService = Exclude<ServiceName, "edge"> | "writer";

const SERVICE_NAMES: Record<CalledService, string> = {
  inventory: "seckill.v1.SaleService",
  order: "seckill.v1.OrderService",
  gateway: "seckill.v1.AccessService",
  writer: "seckill.v1.DeadLetterService",
};
const LABELS: Record<CalledService, string> = { inventory: "the inventory service", order: "the order service", gateway: "the gateway", writer: "the order writer" };

/** What is wrong with a service, judging by its answer to the probe (or to any call); undefined when it answered. */
export function probeProblem(name: CalledService, address: string, error: unknown): string | undefined {
  if (error === undefined) return undefined;
  const label = LABELS[name];
  if (!isGrpcError(error)) return `${label} at ${address} failed: ${String(error)}`;
  const refusal = rejectionOf(error);
  if (error.code === status.UNAVAILABLE && refusal.reason === "OVERLOADED") {
    return `${label} at ${address} answers but a dependency is down (${refusal.message}) — check Redis, NATS and Postgres`;
  }
  if (error.code === status.UNAVAILABLE || error.code === status.DEADLINE_EXCEEDED) {
    return `cannot reach ${label} at ${address} — is the backend running? start it with: npm start (or point --${name} at it)`;
  }
  if (error.code === status.UNIMPLEMENTED) {
    return `${address} does not serve ${SERVICE_NAMES[name]} — is --${name} ${label}'s address?`;
  }
  return undefined;
}

/** "NOT_FOUND: no sale X" plus the fields a BadRequest names. */
export function describeError(error: unknown): string {
  if (!isGrpcError(error)) return error instanceof Error ? error.message : String(error);
  const refusal = rejectionOf(error);
  const code = status[error.code] ?? String(error.code);
  const head = refusal.reason && refusal.reason !== code ? `${code} (${refusal.reason})` : code;
  const fields = refusal.fieldViolations
    .filter((v) => !refusal.message.includes(`${v.field}: ${v.description}`))
    .map((v) => `\n  ${v.field}: ${v.description}`)
    .join("");
  return `${head}: ${refusal.message}${fields}`;
}

/** The name of a gRPC status code ("UNAVAILABLE"). */
export const codeName = (code: status): string => status[code] ?? `CODE_${code}`;
