// The backend as the CLI sees it: SDK clients for the public services (sales,
// orders, and the gateway's AccessService), a reachability probe of those a
// command needs, run before it, and readable gRPC errors.
import { credentials, status, type ServiceError } from "@grpc/grpc-js";
import { AccessServiceClient, OrderServiceClient, SaleServiceClient, callUnary, rejectionOf, userMetadata } from "@seckill/sdk";

export interface BackendOptions {
  /** host:port of the inventory service (SaleService). */
  inventory: string;
  /** host:port of the order service (OrderService). */
  order: string;
  /** host:port of the gateway (AccessService: purchase tokens). */
  gateway: string;
  /** Deadline of each call, in milliseconds. */
  deadline: number;
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

export interface Backend {
  readonly options: BackendOptions;
  readonly sales: SaleServiceClient;
  readonly orders: OrderServiceClient;
  readonly access: AccessServiceClient;
  close(): void;
}

export function connect(options: BackendOptions): Backend {
  let sales: SaleServiceClient | undefined;
  let orders: OrderServiceClient | undefined;
  let access: AccessServiceClient | undefined;
  return {
    options,
    get sales() {
      return (sales ??= new SaleServiceClient(options.inventory, credentials.createInsecure()));
    },
    get orders() {
      return (orders ??= new OrderServiceClient(options.order, credentials.createInsecure()));
    },
    get access() {
      return (access ??= new AccessServiceClient(options.gateway, credentials.createInsecure()));
    },
    close() {
      sales?.close();
      orders?.close();
      access?.close();
    },
  };
}

export type ServiceName = "inventory" | "order" | "gateway";

/** A syntactically valid id no sale has: GetSaleStatus answers NOT_FOUND. */
const PROBE_SALE_ID = "00000000000000000000000000";
const PROBE_TIMEOUT_MS = 2000;

export const isGrpcError = (error: unknown): error is ServiceError =>
  typeof error === "object" && error !== null && "code" in error && "details" in error && "metadata" in error;

/**
 * Makes one cheap call to each service with a short deadline. Any answer from
 * the service itself (NOT_FOUND, INVALID_ARGUMENT) means it is there; no
 * connection or no answer in time becomes a CliError telling how to start it.
 */
export async function checkReachable(backend: Backend, services: ServiceName[]): Promise<void> {
  const deadlineMs = Math.min(backend.options.deadline, PROBE_TIMEOUT_MS);
  const probes: Record<ServiceName, () => Promise<unknown>> = {
    inventory: () => callUnary(backend.sales, "getSaleStatus", { saleId: PROBE_SALE_ID }, { deadlineMs }),
    // A malformed order id is refused before any lookup: no load, no dependency involved.
    order: () => callUnary(backend.orders, "getOrder", { orderId: "probe" }, { metadata: userMetadata("seckill-cli-probe"), deadlineMs }),
    // Likewise a malformed sale id.
    gateway: () => callUnary(backend.access, "getChallenge", { saleId: "probe" }, { metadata: userMetadata("seckill-cli-probe"), deadlineMs }),
  };
  const results = await Promise.all(services.map(async (name) => ({ name, error: await probes[name]().then(() => undefined, (e: unknown) => e) })));
  const problems = results.map(({ name, error }) => probeProblem(name, backend.options[name], error));
  const found = problems.filter((p): p is string => p !== undefined);
  if (found.length > 0) throw new CliError(found.join("\n"));
}

/** A service the CLI calls: the public ones, and the order writer (DeadLetterService, --writer). */
export type CalledService = ServiceName | "writer";

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
