import { credentials, status, type ServiceError } from "@grpc/grpc-js";
import { OrderServiceClient, callUnary, rejectionOf, userMetadata } from "@seckill/sdk";

/** A BFF placing an order for a logged-in user; the README shows this file. */
export async function buy(orderAddress: string, saleId: string, userId: string, requestId: string) {
  const orders = new OrderServiceClient(orderAddress, credentials.createInsecure());
  try {
    const { order } = await callUnary(
      orders,
      "placeOrder",
      { saleId, quantity: 1, requestId, purchaseToken: "", retry: false },
      { metadata: userMetadata(userId), deadlineMs: 2000 },
    );
    return { won: true, orderId: order!.orderId };
  } catch (error) {
    const refusal = rejectionOf(error as ServiceError);
    // e.g. FAILED_PRECONDITION + "SOLD_OUT"; on UNAVAILABLE retry with the same requestId and retry: true
    if (refusal.code === status.UNAVAILABLE) throw error;
    return { won: false, reason: refusal.reason };
  } finally {
    orders.close();
  }
}
