import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { credentials, status } from "@grpc/grpc-js";
import {
  AccessServiceClient,
  OrderServiceClient,
  OrderStatus,
  callUnary,
  clientOptions,
  issuePurchaseToken,
  placeOrder,
  userMetadata,
  watchOrder,
  type GaveUp,
  type GetChallengeResponse,
  type Refused,
} from "@seckill/sdk";

/** The BFF's clients, made once (connectClients). */
export interface Clients {
  access: AccessServiceClient;
  orders: OrderServiceClient;
}

/** Where `npm start` runs the edge (Envoy). */
export const EDGE_ADDRESS = "127.0.0.1:8080";

/**
 * Through the edge, as in production: both clients dial Envoy, which checks the
 * purchase token and the limits and routes PlaceOrder to the flash-sale order
 * service (in production over TLS with the BFF's client certificate:
 * credentials.createSsl(ca, key, cert)); clientOptions() spreads the calls over
 * every address of the edge's name and lets grpc-js retry the reads. Or
 * `{ gateway, order }`: straight to the services, past every check of the edge.
 */
export function connectClients(via: { edge: string } | { gateway: string; order: string } = { edge: EDGE_ADDRESS }): Clients {
  const [gateway, order] = "edge" in via ? [via.edge, via.edge] : [via.gateway, via.order];
  return {
    access: new AccessServiceClient(gateway, credentials.createInsecure(), clientOptions()),
    orders: new OrderServiceClient(order, credentials.createInsecure(), clientOptions()),
  };
}

/** Shows the challenge to the buyer (`image`, or `question` for screen readers) and resolves with what they typed. */
export type AskBuyer = (challenge: GetChallengeResponse) => Promise<string>;

/** Nothing answered after the SDK's retries: the page asks the buyer to try again (a PlaceOrder may have gone through: `gaveUp.mayHaveBeenAccepted`). */
export class NoAnswer extends Error {
  constructor(readonly gaveUp: GaveUp) {
    super(gaveUp.message);
  }
}

/** Why the buyer did not win: the service's reason (SOLD_OUT, CHALLENGE_FAILED, NOT_ELIGIBLE, ...), or the edge's code. */
function reasonOf(result: Refused | GaveUp): string {
  if (result.kind === "gaveUp") throw new NoAnswer(result);
  // The edge's own refusals name no reason, only a code: RESOURCE_EXHAUSTED (over a limit: try again in a
  // moment), UNAUTHENTICATED (no valid purchase token); result.edge says which of its checks refused.
  return result.reason ?? status[result.code];
}

/**
 * A BFF buying one unit for a logged-in user, who clicked "buy" with `requestId`.
 * Pass `askBuyer` when the sale requires a challenge (GetSale: `accessRules.challengeRequired`).
 */
export async function buy(clients: Clients, saleId: string, userId: string, requestId: string, askBuyer?: AskBuyer) {
  const { access, orders } = clients;
  // 1. A purchase token for this user and sale, with the answer to a challenge if the sale asks for one.
  const challenge = { challengeId: "", challengeAnswer: "" };
  if (askBuyer) {
    const shown = await callUnary(access, "getChallenge", { saleId }, { metadata: userMetadata(userId) });
    Object.assign(challenge, { challengeId: shown.challengeId, challengeAnswer: await askBuyer(shown) });
  }
  const issued = await issuePurchaseToken(access, { saleId, userId, ...challenge });
  if (issued.kind !== "issued") return { won: false, reason: reasonOf(issued) };

  // 2. PlaceOrder with the token. The SDK sends a lost answer again: same request id and token, retry: true.
  const placed = await placeOrder(orders, { saleId, userId, purchaseToken: issued.token, requestId });
  if (placed.kind !== "won") return { won: false, reason: reasonOf(placed) };

  // 3. Won; the order is PENDING until it is stored. Watch it (the SDK reconnects) until then, for at most 10 s.
  let order = placed.order;
  try {
    for await (const update of watchOrder(orders, order.orderId, { userId, signal: AbortSignal.timeout(10_000) })) {
      order = update;
      if (order.status !== OrderStatus.ORDER_STATUS_PENDING) break;
    }
  } catch {
    // Watching failed (e.g. TOO_MANY_WATCHES): the order stands all the same; the page can poll GetOrder.
  }
  return { won: true, orderId: order.orderId, status: order.status };
}

// One purchase against `npm start`: npx tsx sdk/examples/place-order.ts <sale-id> <user-id> [--direct]
// Through the edge at EDGE_ADDR (default 127.0.0.1:8080); with --direct, to GATEWAY_ADDR and ORDER_ADDR.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [saleId = "", userId = "", flag] = process.argv.slice(2);
  const direct = flag === "--direct";
  const edge = process.env.EDGE_ADDR ?? EDGE_ADDRESS;
  const [gateway, order] = [process.env.GATEWAY_ADDR ?? "127.0.0.1:50054", process.env.ORDER_ADDR ?? "127.0.0.1:50052"];
  const clients = connectClients(direct ? { gateway, order } : { edge });
  try {
    console.log(await buy(clients, saleId, userId, `req-${Date.now()}`));
  } catch (error) {
    if (!(error instanceof NoAnswer)) throw error;
    const where = direct ? `the gateway at ${gateway} or the order service at ${order}` : `the edge (Envoy) at ${edge}`;
    const hint = direct ? "is npm start running?" : "is npm start running, with Envoy (npm run envoy:install)? To call the services directly: --direct";
    console.error(error.gaveUp.unreachable ? `cannot reach ${where}: ${hint}` : `no answer: ${error.message}`);
    process.exitCode = 1;
  } finally {
    clients.access.close();
    clients.orders.close();
  }
}
