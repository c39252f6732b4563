import { status, type ServiceError } from "@grpc/grpc-js";
import {
  OrderStatus,
  callUnary,
  purchaseMetadata,
  rejectionOf,
  userMetadata,
  watchOrder,
  type AccessServiceClient,
  type GetChallengeResponse,
  type Order,
  type OrderServiceClient,
} from "@seckill/sdk";

/** The BFF's clients, made once: `new AccessServiceClient(gatewayAddress, credentials)`, likewise OrderServiceClient. */
export interface Clients {
  access: AccessServiceClient;
  orders: OrderServiceClient;
}

/** Shows the challenge to the buyer (`image`, or `question` for screen readers) and resolves with what they typed. */
export type AskBuyer = (challenge: GetChallengeResponse) => Promise<string>;

/**
 * A BFF buying one unit for a logged-in user, who clicked "buy" with `requestId`.
 * Pass `askBuyer` when the sale requires a challenge (GetSale: `accessRules.challengeRequired`).
 */
export async function buy(clients: Clients, saleId: string, userId: string, requestId: string, askBuyer?: AskBuyer) {
  const { access, orders } = clients;
  let placed: Order;
  try {
    // 1. A purchase token for this user and sale, with the answer to a challenge if the sale asks for one.
    const challenge = { challengeId: "", challengeAnswer: "" };
    if (askBuyer) {
      const shown = await callUnary(access, "getChallenge", { saleId }, { metadata: userMetadata(userId) });
      Object.assign(challenge, { challengeId: shown.challengeId, challengeAnswer: await askBuyer(shown) });
    }
    const { token } = await callUnary(access, "issuePurchaseToken", { saleId, ...challenge }, { metadata: userMetadata(userId) });

    // 2. PlaceOrder with the token. A lost answer (UNAVAILABLE) is sent again: same request id and token, retry: true.
    const metadata = purchaseMetadata(userId, saleId, token);
    for (let attempt = 1; ; attempt++) {
      try {
        const request = { saleId, quantity: 1, requestId, purchaseToken: "", retry: attempt > 1 };
        placed = (await callUnary(orders, "placeOrder", request, { metadata, deadlineMs: 2000 })).order!;
        break;
      } catch (error) {
        const { code, retryDelayMs } = rejectionOf(error as ServiceError);
        if (code !== status.UNAVAILABLE || attempt === 3) throw error;
        await new Promise((resolve) => setTimeout(resolve, retryDelayMs ?? 100 * attempt));
      }
    }
  } catch (error) {
    const refusal = rejectionOf(error as ServiceError);
    if (refusal.code === status.UNAVAILABLE) throw error; // still no answer: tell the buyer to try again
    return { won: false, reason: refusal.reason }; // e.g. SOLD_OUT, CHALLENGE_FAILED, NOT_ELIGIBLE
  }

  // 3. Won; the order is PENDING until it is stored. Watch it (the SDK reconnects) until then, for at most 10 s.
  let order = placed;
  try {
    for await (const update of watchOrder(orders, placed.orderId, { userId, signal: AbortSignal.timeout(10_000) })) {
      order = update;
      if (order.status !== OrderStatus.ORDER_STATUS_PENDING) break;
    }
  } catch {
    // Watching failed (e.g. TOO_MANY_WATCHES): the order stands all the same; the page can poll GetOrder.
  }
  return { won: true, orderId: order.orderId, status: order.status };
}
