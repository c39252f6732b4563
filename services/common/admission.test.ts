// The admission gate on a real grpc-js server: past the in-flight limit a
// unary call is refused from its headers (no handler runs), with the same
// status, reason and retry hint clients expect; health checks and server
// streams always go through; the count follows calls that end in any way.
import http2 from "node:http2";
import { afterEach, describe, expect, it } from "vitest";
import { credentials, Server, status, type ServerUnaryCall, type ServerWritableStream, type sendUnaryData } from "@grpc/grpc-js";
import {
  callUnary,
  OrderServiceClient,
  OrderServiceService,
  rejectionOf,
  PlaceOrderRequest,
  userMetadata,
  type PlaceOrderResponse,
  type WatchOrderRequest,
  type WatchOrderResponse,
} from "@seckill/sdk";
import { checkHealth } from "../../tools/stack/health.js";
import { eventually } from "../../tools/stack/fixtures.js";
import { installAdmissionGate, refusalHeaders, type QuickAnswer } from "./admission.js";
import { startGrpcServer } from "./grpc-server.js";
import { quietLogger } from "./log.js";
import { Refusal, refuse } from "./refusal.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/**
 * An order service whose PlaceOrder answers only when released (or at once
 * with `hold: false`), keeping the requests its handler saw.
 */
async function start(maxInFlight: number, opts: { hold?: boolean; quickAnswers?: Record<string, QuickAnswer> } = {}) {
  const held: (() => void)[] = [];
  const seen: PlaceOrderRequest[] = [];
  const implementation = {
    placeOrder: (call: ServerUnaryCall<PlaceOrderRequest, PlaceOrderResponse>, callback: sendUnaryData<PlaceOrderResponse>) => {
      seen.push(call.request);
      if (opts.hold === false) callback(null, { order: undefined });
      else held.push(() => callback(null, { order: undefined }));
    },
    watchOrder: (call: ServerWritableStream<WatchOrderRequest, WatchOrderResponse>) => {
      call.end();
    },
  };
  const grpc = await startGrpcServer({
    address: "127.0.0.1:0",
    services: [{ name: "seckill.v1.OrderService", definition: OrderServiceService as never, implementation: implementation as never, quickAnswers: opts.quickAnswers }],
    maxMessageBytes: 4 * 1024 * 1024,
    maxInFlight,
    log: quietLogger(),
  });
  grpc.setServing(true);
  cleanups.push(() => grpc.shutdown({ drainDelayMs: 0, graceMs: 100 }));
  const address = `127.0.0.1:${grpc.port}`;
  const client = () => {
    // Own connection each: one connection may not open more streams than the limit.
    const c = new OrderServiceClient(address, credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 });
    cleanups.push(() => c.close());
    return c;
  };
  return { address, client, held, seen, handled: () => seen.length };
}

const order = (i: number, requestId = `r-${i}`): PlaceOrderRequest => ({ saleId: "sale", quantity: 1, requestId, purchaseToken: "", retry: false });
const place = (client: OrderServiceClient, i: number, requestId?: string) =>
  callUnary(client, "placeOrder", order(i, requestId), { metadata: userMetadata(`u-${i}`) }).then(
    () => "ok" as const,
    (error) => rejectionOf(error),
  );

const until = (condition: () => boolean, what: string) => eventually(condition, 5000, what, 10);

describe("the admission gate", () => {
  it("refuses calls past the limit before any handler runs: UNAVAILABLE, OVERLOADED, a retry hint", async () => {
    const server = await start(2);
    const first = [place(server.client(), 1), place(server.client(), 2)];
    await until(() => server.handled() === 2, "two admitted calls");
    const refused = await Promise.all([3, 4, 5].map((i) => place(server.client(), i)));
    for (const refusal of refused) {
      expect(refusal).toMatchObject({ code: status.UNAVAILABLE, reason: "OVERLOADED" });
      expect(refusal !== "ok" && refusal.retryDelayMs).toBe(50);
    }
    expect(server.handled()).toBe(2);

    for (const release of server.held.splice(0)) release();
    expect(await Promise.all(first)).toEqual(["ok", "ok"]);
    // The slots are free again.
    const again = place(server.client(), 6);
    await until(() => server.handled() === 3, "a call admitted after the others ended");
    for (const release of server.held.splice(0)) release();
    expect(await again).toBe("ok");
  });

  it("frees the slot of a call its client cancelled", async () => {
    const server = await start(1);
    const client = server.client();
    const call = client.placeOrder(order(1), userMetadata("u-1"), () => undefined);
    await until(() => server.handled() === 1, "the admitted call");
    call.cancel();
    // Retried until the server has seen the cancellation: then a call is admitted, not refused.
    const refusals: unknown[] = [];
    const deadline = Date.now() + 5000;
    let admitted: Promise<unknown> | undefined;
    while (!admitted && Date.now() < deadline) {
      const attempt = place(server.client(), 2, `after-cancel-${Date.now()}`);
      const first = await Promise.race([attempt, until(() => server.handled() === 2, "an admitted call").then(() => "admitted")]);
      if (first === "admitted") admitted = attempt;
      else refusals.push(first);
    }
    expect(server.handled()).toBe(2);
    for (const refusal of refusals) expect(refusal).toMatchObject({ reason: "OVERLOADED" });
    for (const release of server.held.splice(0)) release();
    expect(await admitted).toBe("ok");
  });

  it("answers a refused call carrying a large or oversized message, and the connection stays usable", async () => {
    const server = await start(1);
    const first = place(server.client(), 1);
    await until(() => server.handled() === 1, "the admitted call");
    const client = server.client();
    const big = await place(client, 2, "x".repeat(3 * 1024 * 1024));
    expect(big).toMatchObject({ code: status.UNAVAILABLE, reason: "OVERLOADED" });
    // Past the message size limit the body is not read to its end: the answer is the same.
    const huge = await place(client, 3, "x".repeat(6 * 1024 * 1024));
    expect(huge).toMatchObject({ code: status.UNAVAILABLE, reason: "OVERLOADED" });
    for (const release of server.held.splice(0)) release();
    expect(await first).toBe("ok");
    const next = place(client, 4);
    await until(() => server.handled() === 2, "a call on the same connection");
    for (const release of server.held.splice(0)) release();
    expect(await next).toBe("ok");
  });

  it("answers the calls a connection opens as it cancels as many others, when it holds MAX_IN_FLIGHT calls: admitted or OVERLOADED, never reset", async () => {
    const server = await start(4);
    const client = server.client();
    const held = [1, 2, 3, 4].map((i) => client.placeOrder(order(i), userMetadata(`u-${i}`), () => undefined));
    await until(() => server.handled() === 4, "four admitted calls on one connection");
    // Cancelled and replaced in the same turn, as a proxy relays its clients'
    // cancellations and new calls: the server reads them in one go.
    for (const call of held) call.cancel();
    const replacements = Promise.all([5, 6, 7, 8].map((i) => place(client, i)));
    const releasing = setInterval(() => {
      for (const release of server.held.splice(0)) release();
    }, 10);
    cleanups.push(() => clearInterval(releasing));
    for (const outcome of await replacements) {
      if (outcome !== "ok") expect(outcome).toMatchObject({ code: status.UNAVAILABLE, reason: "OVERLOADED" });
    }
  });

  it("frees a call's place once it is answered, even while its client is still sending a message too large to read", async () => {
    const server = await start(1, { hold: false });
    const client = server.client();
    for (let i = 0; i < 3; i++) {
      expect(await place(client, i, "x".repeat(6 * 1024 * 1024))).toMatchObject({ code: status.RESOURCE_EXHAUSTED });
      expect(await place(client, 10 + i)).toBe("ok");
    }
  });

  it("lets health checks and server streams through while unary calls are at the limit", async () => {
    const server = await start(1);
    const first = place(server.client(), 1);
    await until(() => server.handled() === 1, "the admitted call");
    expect(await checkHealth(server.address)).toBe("SERVING");
    const stream = server.client().watchOrder({ orderId: "o", lastStatus: 0 } as WatchOrderRequest, userMetadata("u-1"));
    const ended = await new Promise<string>((resolve) => {
      stream.on("data", () => undefined);
      stream.on("error", (error: { code: number }) => resolve(`error ${error.code}`));
      stream.on("end", () => resolve("end"));
    });
    expect(ended).toBe("end");
    for (const release of server.held.splice(0)) release();
    expect(await first).toBe("ok");
  });

  it("refuses to run on a grpc-js whose HTTP/2 servers it cannot find", () => {
    const server = new Server();
    delete (server as unknown as { http2Servers?: unknown }).http2Servers;
    const refusal = new Refusal("OVERLOADED", "busy", { retryDelayMs: 50 });
    expect(() => installAdmissionGate(server, { maxInFlight: 1, maxMessageBytes: 1024, refusal, gatedPaths: new Set() })).toThrow(/http2Servers/);
  });

  it("builds the refusal as a trailers-only response with a percent-encoded message", () => {
    const headers = refusalHeaders(new Refusal("OVERLOADED", "100% busy — retry", { retryDelayMs: 50 }));
    expect(headers).toMatchObject({ ":status": 200, "content-type": "application/grpc", "grpc-status": String(status.UNAVAILABLE) });
    expect(headers["grpc-message"]).toBe("100%25 busy %E2%80%94 retry");
    expect(typeof headers["grpc-status-details-bin"]).toBe("string");
  });
});

describe("quick answers", () => {
  const SOLD = refuse("SOLD_OUT", "the sale is sold out");
  const quickAnswers = {
    placeOrder: (headers: http2.IncomingHttpHeaders, message: Buffer) =>
      PlaceOrderRequest.decode(message).requestId.startsWith("sold-") && headers["x-user-id"] ? SOLD : undefined,
  };

  it("answers what the service declares answerable from the request, and hands every other call on with its bytes intact", async () => {
    const server = await start(8, { hold: false, quickAnswers });
    const client = server.client();
    expect(await place(client, 1, "sold-1")).toMatchObject({ code: status.FAILED_PRECONDITION, reason: "SOLD_OUT" });
    expect(server.handled()).toBe(0);
    expect(await place(client, 2, "kept-2")).toBe("ok");
    // Past the size looked at here, a request reaches the handler as sent, whatever it holds.
    const long = `sold-${"x".repeat(6000)}`;
    expect(await place(client, 3, long)).toBe("ok");
    expect(server.seen.map((r) => [r.requestId, r.saleId])).toEqual([
      ["kept-2", "sale"],
      [long, "sale"],
    ]);
  });

  it("answers a request that ends before a complete message with INVALID_ARGUMENT, and no handler runs", async () => {
    const server = await start(8, { hold: false, quickAnswers });
    const session = http2.connect(`http://${server.address}`);
    cleanups.push(() => session.close());
    const call = (body: Buffer) =>
      new Promise<string | undefined>((resolve, reject) => {
        const stream = session.request({
          ":method": "POST",
          ":path": "/seckill.v1.OrderService/PlaceOrder",
          "content-type": "application/grpc",
          te: "trailers",
          "x-user-id": "u-1",
        });
        let code: string | undefined;
        stream.on("response", (headers) => (code ??= headers["grpc-status"] as string | undefined));
        stream.on("trailers", (headers) => (code ??= headers["grpc-status"] as string | undefined));
        stream.on("error", reject);
        stream.on("close", () => resolve(code));
        stream.resume();
        stream.end(body);
      });
    const frame = Buffer.from([0, 0, 0, 0, 100, 1, 2, 3]); // declares 100 bytes, carries 3
    expect(await call(Buffer.alloc(0))).toBe(String(status.INVALID_ARGUMENT));
    expect(await call(frame)).toBe(String(status.INVALID_ARGUMENT));
    expect(server.handled()).toBe(0);
    expect(await place(server.client(), 4, "kept-4")).toBe("ok");
  });
});
