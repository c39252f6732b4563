// The service config a BFF's channels use, against a real grpc-js server on
// loopback: the channel itself sends the reads again after UNAVAILABLE, never
// PlaceOrder (its retry says retry: true, and goes through placeOrder).
import { afterEach, describe, expect, it } from "vitest";
import { credentials, status } from "@grpc/grpc-js";
import {
  GetSaleStatusResponse,
  OrderServiceClient,
  OrderServiceService,
  PlaceOrderResponse,
  RETRYABLE_READS,
  SERVICE_CONFIG,
  SaleServiceClient,
  SaleServiceService,
  AccessServiceService,
  callUnary,
  clientOptions,
} from "@seckill/sdk";
import { grpcError, startScriptedServer, type ScriptedServer } from "./scripted-server.js";

const unavailable = () => grpcError(status.UNAVAILABLE, "shutting down", "OVERLOADED");
const saleStatus = GetSaleStatusResponse.fromPartial({ saleId: "s1", stockLeft: 3 });

let server: ScriptedServer | undefined;
const closers: { close(): void }[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) c.close();
  await server?.stop();
});

describe("clientOptions", () => {
  it("lets the channel send a read again after UNAVAILABLE", async () => {
    server = await startScriptedServer({ getSaleStatus: [unavailable(), unavailable(), saleStatus] });
    const sales = new SaleServiceClient(server.address, credentials.createInsecure(), clientOptions());
    closers.push(sales);
    const answer = await callUnary(sales, "getSaleStatus", { saleId: "s1" }, { deadlineMs: 5000 });
    expect(answer.stockLeft).toBe(3);
    expect(server.received.map((r) => r.method)).toEqual(["getSaleStatus", "getSaleStatus", "getSaleStatus"]);
  });

  it("never lets the channel send PlaceOrder again", async () => {
    server = await startScriptedServer({ placeOrder: [unavailable(), PlaceOrderResponse.fromPartial({ order: { orderId: "o1" } })] });
    const orders = new OrderServiceClient(server.address, credentials.createInsecure(), clientOptions());
    closers.push(orders);
    const request = { saleId: "s1", quantity: 1, requestId: "r1", purchaseToken: "", retry: false };
    await expect(callUnary(orders, "placeOrder", request)).rejects.toMatchObject({ code: status.UNAVAILABLE });
    expect(server.received.map((r) => r.method)).toEqual(["placeOrder"]);
  });

  it("is what retries: a channel without it gives up at the first UNAVAILABLE", async () => {
    server = await startScriptedServer({ getSaleStatus: [unavailable(), saleStatus] });
    const sales = new SaleServiceClient(server.address, credentials.createInsecure());
    closers.push(sales);
    await expect(callUnary(sales, "getSaleStatus", { saleId: "s1" })).rejects.toMatchObject({ code: status.UNAVAILABLE });
    expect(server.received).toHaveLength(1);
  });
});

describe("SERVICE_CONFIG", () => {
  it("names only unary reads of the contract, and balances round robin", () => {
    const definitions: Record<string, Record<string, { path: string; requestStream: boolean; responseStream: boolean }>> = {
      "seckill.v1.SaleService": SaleServiceService,
      "seckill.v1.OrderService": OrderServiceService,
      "seckill.v1.AccessService": AccessServiceService,
    };
    const paths = Object.values(definitions).flatMap((d) =>
      Object.values(d)
        .filter((m) => !m.requestStream && !m.responseStream)
        .map((m) => m.path),
    );
    const named = SERVICE_CONFIG.methodConfig.flatMap((c) => c.name.map((n) => `/${n.service}/${n.method}`));
    expect(named.every((path) => paths.includes(path))).toBe(true);
    expect(named).toEqual(Object.entries(RETRYABLE_READS).flatMap(([service, methods]) => methods.map((m) => `/${service}/${m}`)));
    for (const write of ["PlaceOrder", "PayOrder", "CancelOrder", "IssuePurchaseToken", "CreateSale", "OpenSale", "CloseSale", "WarmSale", "ReconcileSale", "WatchOrder"]) {
      expect(named.some((path) => path.endsWith(`/${write}`))).toBe(false);
    }
    expect(SERVICE_CONFIG.loadBalancingConfig).toEqual([{ round_robin: {} }]);
  });
});
