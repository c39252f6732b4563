// Smoke test of the bench's load generator: a few hundred calls against the
// no-op baseline server and against a real test stack, and every call is
// accounted for; then a node:http2 server that resets, refuses, goes away or
// never answers, and how each such call is counted. It asserts counts only,
// never speed (benchmarks are not tests).
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { callUnary } from "@seckill/sdk";
import { readConfig } from "../services/common/config.js";
import { quietLogger } from "../services/common/log.js";
import { eventually, startTestStack, type TestStack } from "../test/support/stack.js";
import { EDGE_LIMITED, countOf, latencyOf, runLoadInChild } from "./h2-load.js";
import { startNoopServer } from "./noop-server.js";
import { startRefusalFloor } from "./refusal-floor.js";

const SALE_ID = "01KAAAAAAAAAAAAAAAAAAAAAAA";

describe("against the no-op server", () => {
  let noop: Awaited<ReturnType<typeof startNoopServer>>;
  beforeAll(async () => {
    noop = await startNoopServer("127.0.0.1:0", readConfig(), quietLogger());
  });
  afterAll(async () => {
    await noop?.stop();
  });

  it("closed loop: sends exactly the calls asked for, each answered OK and timed", async () => {
    const result = await runLoadInChild({ address: noop.address, saleId: SALE_ID, mode: "closed", connections: 2, streams: 8, calls: 300, tag: "smoke-noop" }, 30_000);
    expect(result.sent).toBe(300);
    expect(result.statuses).toEqual({ OK: 300 });
    expect(latencyOf(result, "OK").count).toBe(300);
    expect(result.window.completed).toEqual({ OK: 300 });
    expect(result.errors).toEqual([]);
  });

  it("open loop: sends exactly the asked rate's schedule and accounts for every call", async () => {
    const result = await runLoadInChild(
      { address: noop.address, saleId: SALE_ID, mode: "open", connections: 2, streams: 1, rate: 400, seconds: 1, warmupSeconds: 0, poolSize: 2000, tag: "smoke-open" },
      30_000,
    );
    expect(result.sent).toBe(400);
    expect(result.notSent).toBe(0);
    expect(countOf(result)).toBe(result.sent);
    expect(result.statuses.OK).toBe(result.sent);
    expect(latencyOf(result).count).toBe(result.sent);
  });

  it("open loop: a pool shorter than the schedule is reported, not hidden", async () => {
    const result = await runLoadInChild(
      { address: noop.address, saleId: SALE_ID, mode: "open", connections: 1, streams: 1, rate: 400, seconds: 1, warmupSeconds: 0, poolSize: 150, tag: "smoke-short" },
      30_000,
    );
    expect(result.sent).toBe(150);
    expect(result.notSent).toBe(250);
    expect(result.poolExhausted).toBe(true);
  });
});

describe("against the refusal floor", () => {
  it("every call gets the admission gate's refusal: UNAVAILABLE OVERLOADED", async () => {
    const floor = await startRefusalFloor("127.0.0.1:0", 256);
    try {
      const result = await runLoadInChild({ address: floor.address, saleId: SALE_ID, mode: "closed", connections: 2, streams: 8, calls: 200, tag: "smoke-floor" }, 30_000);
      expect(result.statuses).toEqual({ UNAVAILABLE: 200 });
      expect(result.reasons).toEqual({ OVERLOADED: 200 });
      expect(result.errors).toEqual([]);
    } finally {
      await floor.stop();
    }
  });
});

describe("against a real stack", () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("unique buyers: exactly the stock is sold, the rest hear SOLD_OUT, and every order is distinct", async () => {
    const sale = await stack.createSale({ totalStock: 100, perUserLimit: 1 });
    const result = await runLoadInChild({ address: stack.order.address, saleId: sale.saleId, mode: "closed", connections: 2, streams: 8, calls: 300, tag: "smoke-stack" }, 30_000);
    const ok = result.statuses.OK ?? 0;
    const soldOut = result.statuses.FAILED_PRECONDITION ?? 0;
    expect(result.sent).toBe(300);
    expect(ok).toBe(100);
    expect(ok + soldOut).toBe(result.sent);
    expect(result.reasons).toEqual({ SOLD_OUT: soldOut });
    expect(result.lastOkAt).toBeGreaterThan(0);

    const { stockLeft } = await callUnary(stack.inventoryClient, "getStock", { saleId: sale.saleId });
    expect(stockLeft).toBe(0);
    await eventually(async () => (await stack.db("sales").where({ id: sale.saleId }).first("sold")).sold === ok, 10_000, "the orders in Postgres");
    const [row] = await stack
      .db("orders")
      .where({ sale_id: sale.saleId })
      .select(stack.db.raw("count(*)::int AS n, count(DISTINCT id)::int AS ids, count(DISTINCT user_id)::int AS users, count(DISTINCT request_id)::int AS requests"));
    expect(row).toEqual({ n: ok, ids: ok, users: ok, requests: ok });
  });
});

describe("against a misbehaving server", () => {
  let server: http2.Http2Server | undefined;
  const sessions = new Set<http2.ServerHttp2Session>();
  afterEach(async () => {
    // A session that sent GOAWAY stops reading, so it never sees the client leave.
    for (const session of sessions) session.destroy();
    sessions.clear();
    const s = server;
    server = undefined;
    await new Promise<void>((resolve) => s?.close(() => resolve()) ?? resolve());
  });

  /** A node:http2 server on 127.0.0.1; returns its address. */
  async function serve(onStream: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, n: number) => void): Promise<string> {
    let n = 0;
    server = http2.createServer();
    server.on("session", (session) => {
      sessions.add(session);
      session.on("error", () => {});
    });
    server.on("stream", (stream, headers) => {
      stream.on("error", () => {});
      onStream(stream, headers, n++);
    });
    await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
    return `127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  it("a status in the trailers or in a trailers-only answer counts as that status; a reset stream as NO_STATUS", async () => {
    const seen: http2.IncomingHttpHeaders[] = [];
    const address = await serve((stream, headers) => {
      seen.push(headers);
      const i = Number(String(headers["x-user-id"]).split("-u")[1]);
      if (i % 3 === 0) stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      else if (i % 3 === 1) stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "8" }, { endStream: true });
      else {
        stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
        stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
        stream.end(Buffer.from([0, 0, 0, 0, 0]));
      }
    });
    const result = await runLoadInChild({ address, saleId: SALE_ID, mode: "closed", connections: 2, streams: 3, calls: 30, tag: "odd" }, 30_000);
    expect(result.statuses).toEqual({ NO_STATUS: 10, RESOURCE_EXHAUSTED: 10, OK: 10 });
    expect(result.sent).toBe(30);
    expect(result.errors).toEqual([]);
    expect(seen[0]).toMatchObject({
      ":method": "POST",
      ":scheme": "http",
      ":path": "/seckill.v1.OrderService/PlaceOrder",
      ":authority": address,
      "content-type": "application/grpc",
      te: "trailers",
      "grpc-timeout": "5000m",
    });
    expect(new Set(seen.map((h) => h["x-user-id"])).size).toBe(30);
  });

  it("open loop: calls held back by a stall are sent late, counted, and timed from their scheduled time", async () => {
    // Answers at once, except the streams that arrive from 300 ms to 700 ms after
    // the first: those are answered together at 700 ms. With at most 20 calls
    // outstanding, the generator cannot send the ~180 others scheduled during
    // the stall on time: it must send them late (not drop them), count them,
    // and charge each the time since its scheduled send.
    let first = 0;
    const held: (() => void)[] = [];
    const address = await serve((stream) => {
      const answer = () => stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "0" }, { endStream: true });
      const now = performance.now();
      if (first === 0) {
        first = now;
        setTimeout(() => {
          for (const a of held.splice(0)) a();
        }, 700);
      }
      if (now - first >= 300 && now - first < 700) held.push(answer);
      else answer();
    });
    const result = await runLoadInChild(
      { address, saleId: SALE_ID, mode: "open", connections: 2, streams: 1, rate: 500, seconds: 1.2, warmupSeconds: 0, maxInFlight: 20, poolSize: 1000, tag: "stall" },
      30_000,
    );
    // Every call of the schedule (1.2 s at 500/s) went out and was answered.
    expect(result.sent).toBe(600);
    expect(result.notSent).toBe(0);
    expect(result.statuses).toEqual({ OK: 600 });
    expect(result.errors).toEqual([]);
    // The calls scheduled during the stall left late, and say so.
    expect(result.late).toBeGreaterThanOrEqual(150);
    expect(result.lateInWindow).toBe(result.late);
    expect(result.maxLagMs).toBeGreaterThanOrEqual(300);
    // A quarter of the calls were scheduled in the first 300 ms of the stall:
    // each waited at least 100 ms from its scheduled time, so p80 shows it.
    const ok = latencyOf(result, "OK");
    expect(ok.count).toBe(600);
    expect(ok.percentile(80)).toBeGreaterThanOrEqual(100_000);
    expect(ok.max).toBeGreaterThanOrEqual(350_000);
  });

  it("open loop: a connection the server closes is opened again and the schedule goes on", async () => {
    // Every connection answers 50 calls, then a GOAWAY (INTERNAL_ERROR) leaves out the 51st and any after it.
    const perSession = new Map<http2.Http2Session, number>();
    const address = await serve((stream) => {
      const session = stream.session!;
      const n = (perSession.get(session) ?? 0) + 1;
      perSession.set(session, n);
      if (n === 51) session.goaway(http2.constants.NGHTTP2_INTERNAL_ERROR, stream.id! - 2);
      if (n > 50) return;
      stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "0" }, { endStream: true });
    });
    const result = await runLoadInChild(
      { address, saleId: SALE_ID, mode: "open", connections: 1, streams: 1, rate: 400, seconds: 1, warmupSeconds: 0, poolSize: 1000, tag: "away-open" },
      30_000,
    );
    expect(result.sent).toBe(400);
    expect(result.notSent).toBe(0);
    expect(countOf(result, "OK", "NO_STATUS")).toBe(400);
    expect(result.statuses.OK).toBeGreaterThanOrEqual(200);
    expect(result.reconnects).toBeGreaterThanOrEqual(4);
    expect(result.errors).toContain(`goaway ${http2.constants.NGHTTP2_INTERNAL_ERROR}`);
  });

  it("the edge's token-bucket refusal (x-seckill-limited) is an outcome of its own", async () => {
    const address = await serve((stream, _headers, n) =>
      stream.respond(
        n % 2 === 0
          ? { ":status": 200, "content-type": "application/grpc", "grpc-status": "8", "x-seckill-limited": "edge" }
          : { ":status": 200, "content-type": "application/grpc", "grpc-status": "8" },
        { endStream: true },
      ),
    );
    const result = await runLoadInChild({ address, saleId: SALE_ID, mode: "closed", connections: 1, streams: 1, calls: 10, tag: "limited" }, 30_000);
    expect(result.statuses).toEqual({ [EDGE_LIMITED]: 5, RESOURCE_EXHAUSTED: 5 });
    expect(latencyOf(result, EDGE_LIMITED).count).toBe(5);
  });

  it("a call never answered is cancelled a second after its deadline: CLIENT_TIMEOUT", async () => {
    const resets: Promise<number>[] = [];
    const address = await serve((stream) => resets.push(new Promise((resolve) => stream.on("close", () => resolve(stream.rstCode)))));
    const result = await runLoadInChild({ address, saleId: SALE_ID, mode: "closed", connections: 1, streams: 2, calls: 2, deadlineMs: 100, tag: "mute" }, 30_000);
    expect(result.statuses).toEqual({ CLIENT_TIMEOUT: 2 });
    expect(await Promise.all(resets)).toEqual([http2.constants.NGHTTP2_CANCEL, http2.constants.NGHTTP2_CANCEL]);
  });

  it("a GOAWAY: the streams it leaves out count as NO_STATUS, the error is listed, and the run stops", async () => {
    // One stream at a time: the fifth is left out, and the only connection is gone.
    const address = await serve((stream, _headers, n) => {
      if (n === 4) {
        stream.session!.goaway(http2.constants.NGHTTP2_INTERNAL_ERROR, stream.id! - 2);
        return;
      }
      stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "0" }, { endStream: true });
    });
    const result = await runLoadInChild({ address, saleId: SALE_ID, mode: "closed", connections: 1, streams: 1, calls: 20, tag: "away" }, 30_000);
    expect(result.statuses).toEqual({ OK: 4, NO_STATUS: 1 });
    expect(result.sent).toBe(5);
    expect(result.errors).toEqual([`goaway ${http2.constants.NGHTTP2_INTERNAL_ERROR}`]);
  });
});
