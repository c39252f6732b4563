// One simulated buyer: looks at the sale once (like loading the page), then
// clicks "buy". A click is what a BFF does for it, with the SDK's purchase
// helpers: issuePurchaseToken, then placeOrder with the click's own request id
// and that token, each sent again after a lost answer as the SDK's retry rules
// say (through the edge, Envoy's own refusals are read apart from the services').
import { callFailureOf, issuePurchaseToken, placeOrder, type AccessServiceClient, type EdgeRefusal, type OrderServiceClient, type RetryOptions } from "@seckill/sdk";
import type { PlannedUser } from "./plan.js";
import type { BuyerCall, CallRecord, ClickResult } from "./stats.js";

/** What a buyer calls: the page's status read, and the clients a click uses (through the edge unless --direct). */
export interface BuyerPort {
  saleId: string;
  /** Each call's deadline. */
  deadlineMs: number;
  saleStatus(): Promise<unknown>;
  access: AccessServiceClient;
  orders: OrderServiceClient;
}

export interface Clock {
  /** Milliseconds after the opening (monotonic). */
  now(): number;
  sleep(ms: number): Promise<void>;
}

export interface BuyerSettings {
  quantity: number;
  maxAttempts: number;
  /** The port's calls go through the edge: read Envoy's own refusals apart from the services'. */
  throughEdge?: boolean;
}

/** Told of each call the edge refused (retries included), with the refusal's message. */
export type EdgeRefusalListener = (call: BuyerCall, kind: EdgeRefusal, message: string) => void;

/** One user's visit: a status read, then each planned click in turn. */
export async function runBuyer(
  user: PlannedUser,
  port: BuyerPort,
  settings: BuyerSettings,
  clock: Clock,
  random: () => number,
  record: (call: CallRecord) => void,
  refusedAtEdge?: EdgeRefusalListener,
): Promise<{ clicks: ClickResult[]; statusFailed: boolean }> {
  // A failed page load does not stop a determined buyer.
  const statusFailed = await port.saleStatus().then(
    () => false,
    (error: unknown) => {
      const e = callFailureOf(error, settings.throughEdge ?? false);
      if (e.edge) refusedAtEdge?.("GetSaleStatus", e.edge, e.message);
      return true;
    },
  );
  const clicks: ClickResult[] = [];
  for (const click of user.clicks) {
    if (click.thinkMs > 0) await clock.sleep(click.thinkMs);
    clicks.push(await clickBuy(user.userId, click.requestId, port, settings, clock, random, record, refusedAtEdge));
  }
  return { clicks, statusFailed };
}

/** The SDK's retry options for one of a click's calls: simulate's clock and random, each call told. */
function retries(
  call: BuyerCall,
  settings: BuyerSettings,
  clock: Clock,
  random: () => number,
  record?: (call: CallRecord) => void,
  refusedAtEdge?: EdgeRefusalListener,
): RetryOptions {
  return {
    maxAttempts: settings.maxAttempts,
    throughEdge: settings.throughEdge ?? false,
    now: () => clock.now(),
    sleep: (ms) => clock.sleep(ms),
    random,
    onAttempt: (a) => {
      if (a.edge) refusedAtEdge?.(call, a.edge, a.message ?? "");
      record?.({ startMs: a.startMs, endMs: a.endMs, code: a.code, reason: a.reason, ...(a.edge ? { edge: a.edge } : {}) });
    },
  };
}

const refusal = (r: { code: number; reason?: string; edge?: EdgeRefusal }) => ({
  code: r.code,
  ...(r.reason !== undefined ? { reason: r.reason } : {}),
  ...(r.edge ? { edge: r.edge } : {}),
});

/** One click: a purchase token (each click its own: a token serves one request id), then PlaceOrder with it. */
export async function clickBuy(
  userId: string,
  requestId: string,
  port: BuyerPort,
  settings: BuyerSettings,
  clock: Clock,
  random: () => number,
  record: (call: CallRecord) => void,
  refusedAtEdge?: EdgeRefusalListener,
): Promise<ClickResult> {
  const { saleId, deadlineMs } = port;
  const issued = await issuePurchaseToken(port.access, { saleId, userId, deadlineMs, ...retries("IssuePurchaseToken", settings, clock, random, undefined, refusedAtEdge) });
  const tokenCalls = issued.calls;
  if (issued.kind === "refused") return { userId, requestId, tokenCalls, calls: 0, outcome: { kind: "tokenRefused", ...refusal(issued) } };
  if (issued.kind === "gaveUp") return { userId, requestId, tokenCalls, calls: 0, outcome: { kind: "error", code: issued.code, message: issued.message } };
  const placed = await placeOrder(port.orders, {
    saleId,
    userId,
    requestId,
    purchaseToken: issued.token,
    quantity: settings.quantity,
    deadlineMs,
    ...retries("PlaceOrder", settings, clock, random, record, refusedAtEdge),
  });
  const { calls } = placed;
  const outcome =
    placed.kind === "won"
      ? { kind: "won" as const, orderId: placed.order.orderId, quantity: placed.order.quantity, atMs: placed.atMs }
      : placed.kind === "refused"
        ? { kind: "refused" as const, ...refusal(placed) }
        : { kind: "error" as const, code: placed.code, message: placed.message };
  return { userId, requestId, tokenCalls, calls, outcome };
}
