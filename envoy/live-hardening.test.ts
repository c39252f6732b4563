// What the edge shows and what it refuses, on a real Envoy in front of a test
// stack (test/support/edge.ts): the JSON reads of the transcoder, the methods
// and services it never routes, and bad input refused at Envoy (oversized
// headers and bodies, headers sent too slowly, more streams than a connection
// may open, a non-gRPC body on a gRPC route). Every refusal is checked three
// ways: the status Envoy gives, Envoy's own counters, and the services'
// counters of calls served (seckill_grpc_requests_total) and Envoy's upstream
// request counters, which must not move. After each refusal a call on another
// connection, and where the connection survives one on the same connection,
// still succeeds. envoy/README.md lists these statuses.
//
// Small limits make the refusals cheap to reach: 4 streams per connection and
// 1 s to receive request headers; the rest are the local variant's.

import { request as httpRequest } from "node:http";
import { connect as connectHttp2, type ClientHttp2Session, type IncomingHttpHeaders } from "node:http2";
import { connect as connectTcp } from "node:net";
import { credentials, Metadata, status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { callUnary, DeadLetterServiceService, InventoryServiceService, SalePhase, SaleServiceClient, SaleServiceService, type Sale } from "@seckill/sdk";
import { MAX_REQUEST_BODY_BYTES } from "./src/filters.js";
import { LOCAL_LIMITS } from "./src/limits.js";
import { stackClusters, startEdge, type Edge } from "../test/support/edge.js";
import { envoyForTests } from "../test/support/envoy.js";
import {
  FLAG,
  FRAME,
  frame,
  grpcMessage,
  grpcMessagesOf,
  grpcRequestHeaders,
  H2_ERROR,
  headerBlock,
  openRawH2,
  SETTINGS_MAX_CONCURRENT_STREAMS,
  type RawH2,
} from "../test/support/h2-frames.js";
import { rawClient, callMethod, type AnyMethod } from "../test/support/raw-grpc.js";
import { eventually, refusal, startTestStack, type TestStack } from "../test/support/stack.js";

const envoyBin = envoyForTests("the live edge hardening tests");

const MAX_STREAMS = 4;
const HEADERS_TIMEOUT_MS = 1000;
const MAX_HEADERS_BYTES = LOCAL_LIMITS.maxRequestHeadersKb * 1024;
const GET_SALE = "/seckill.v1.SaleService/GetSale";
const SERVICE_CLUSTERS = ["order_flash", "inventory_flash", "order_default", "inventory_default"] as const;

let stack: TestStack;
let envoy: Edge;
let sales: SaleServiceClient;
let sale: Sale;

const edgeUrl = () => `http://127.0.0.1:${envoy.port}`;

/** Calls the services counted as served (every method, every status), from their own metrics. */
async function servedCalls(filter: { method?: string; code?: string } = {}): Promise<number> {
  let total = 0;
  for (const app of [stack.inventory, stack.order]) {
    const text = await app.metrics!.registry.metrics();
    for (const line of text.split("\n")) {
      const m = /^seckill_grpc_requests_total\{(.*)\} (\S+)$/.exec(line);
      if (!m) continue;
      if (filter.method && !m[1].includes(`method="${filter.method}"`)) continue;
      if (filter.code && !m[1].includes(`code="${filter.code}"`)) continue;
      total += Number(m[2]);
    }
  }
  return total;
}

/** Requests Envoy sent to the services (health checks are not requests). */
async function upstreamRequests(): Promise<number> {
  let total = 0;
  for (const c of SERVICE_CLUSTERS) total += await envoy.stat(`cluster.${c}.upstream_rq_total`);
  return total;
}

/** Runs `refuse` and checks that neither Envoy's upstream counters nor the services' call counters moved. */
async function untouched<T>(refuse: () => Promise<T>): Promise<T> {
  const [served, upstream] = [await servedCalls(), await upstreamRequests()];
  const result = await refuse();
  // Give a stray request the time to arrive before counting again.
  await new Promise((r) => setTimeout(r, 100));
  expect({ served: await servedCalls(), upstream: await upstreamRequests() }).toEqual({ served, upstream });
  return result;
}

const getSaleMessage = (saleId: string) => grpcMessage(SaleServiceService.getSale.requestSerialize({ saleId }));

interface Exchange {
  status?: number;
  headers: IncomingHttpHeaders;
  trailers: IncomingHttpHeaders;
  data: Buffer;
  rstCode?: number;
  error?: string;
}

/** One request on an HTTP/2 session, to its end (response, reset or session error). */
function exchange(session: ClientHttp2Session, headers: Record<string, string>, body?: Buffer): Promise<Exchange> {
  return new Promise((resolve) => {
    const out: Exchange = { headers: {}, trailers: {}, data: Buffer.alloc(0) };
    const req = session.request({ ":method": "POST", "content-type": "application/grpc", te: "trailers", ...headers });
    req.on("response", (h) => {
      out.headers = h;
      out.status = Number(h[":status"]);
    });
    req.on("trailers", (t) => (out.trailers = t));
    req.on("data", (d: Buffer) => (out.data = Buffer.concat([out.data, d])));
    req.on("error", (e) => (out.error = e.message));
    req.on("close", () => resolve({ ...out, rstCode: req.rstCode }));
    req.end(body);
  });
}

function openSession(options: Parameters<typeof connectHttp2>[1] = {}): Promise<ClientHttp2Session & { receivedGoaway?: number }> {
  return new Promise((resolve, reject) => {
    const session = connectHttp2(edgeUrl(), options) as ClientHttp2Session & { receivedGoaway?: number };
    session.on("goaway", (code) => (session.receivedGoaway = code));
    session.on("error", () => undefined);
    session.once("remoteSettings", () => resolve(session));
    session.once("close", () => reject(new Error("the edge closed the session before its SETTINGS")));
  });
}

/** A GetSale through the edge on the given session answers the sale. */
async function getSaleOn(session: ClientHttp2Session): Promise<void> {
  const r = await exchange(session, { ":path": GET_SALE }, getSaleMessage(sale.saleId));
  expect(r.trailers["grpc-status"], r.error ?? JSON.stringify(r.headers)).toBe("0");
  const [message] = grpcMessagesOf(r.data);
  expect(SaleServiceService.getSale.responseDeserialize(message).sale?.saleId).toBe(sale.saleId);
}

/** A GetSale through the edge on a connection of its own (grpc-js) answers the sale. */
async function getSaleOnAnotherConnection(): Promise<void> {
  const client = new SaleServiceClient(envoy.address, credentials.createInsecure());
  try {
    expect((await callUnary(client, "getSale", { saleId: sale.saleId })).sale?.saleId).toBe(sale.saleId);
  } finally {
    client.close();
  }
}

/** What the raw client got back on a GetSale stream: the sale of its response message. */
const saleIdOn = (raw: RawH2, id: number) => {
  const [message] = grpcMessagesOf(raw.dataOf(id));
  return message ? SaleServiceService.getSale.responseDeserialize(message).sale?.saleId : undefined;
};

function http1(path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port: envoy.port, path, headers, maxHeaderSize: 64 * 1024, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe.skipIf(!envoyBin)("the edge's JSON reads (grpc_json_transcoder)", () => {
  it("GET /v1/sales/{id} answers the sale as JSON, as GetSale does over gRPC", async () => {
    const r = await http1(`/v1/sales/${sale.saleId}`);
    expect(r.status).toBe(200);
    expect(r.headers["content-type"]).toBe("application/json");
    const body = JSON.parse(r.body) as { sale: Record<string, unknown> };
    const direct = (await callUnary(stack.sales, "getSale", { saleId: sale.saleId })).sale!;
    expect(body.sale).toMatchObject({
      saleId: sale.saleId,
      name: direct.name,
      totalStock: direct.totalStock,
      perUserLimit: direct.perUserLimit,
      startsAt: direct.startsAt!.toISOString(),
      endsAt: direct.endsAt!.toISOString(),
    });
  });

  it("GET /v1/sales/{id}/status answers the phase and the stock as JSON", async () => {
    const r = await http1(`/v1/sales/${sale.saleId}/status`);
    expect(r.status).toBe(200);
    const body = JSON.parse(r.body) as Record<string, unknown>;
    expect(body).toMatchObject({ saleId: sale.saleId, phase: SalePhase[SalePhase.SALE_PHASE_OPEN], stockLeft: sale.totalStock, totalStock: sale.totalStock });
    expect(Date.parse(body.serverTime as string)).toBeGreaterThan(Date.now() - 60_000);
  });

  it("an unknown sale is 404 and a malformed id 400, each with the service's google.rpc.Status as JSON", async () => {
    const unknownId = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
    const notFound = await servedCalls({ code: "NOT_FOUND" });
    for (const path of [`/v1/sales/${unknownId}`, `/v1/sales/${unknownId}/status`]) {
      const r = await http1(path);
      expect({ path, status: r.status, type: r.headers["content-type"] }).toEqual({ path, status: 404, type: "application/json" });
      expect(JSON.parse(r.body)).toEqual({
        code: status.NOT_FOUND,
        message: `no sale ${unknownId}`,
        details: [{ "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "NOT_FOUND", domain: "seckill.v1", metadata: {} }],
      });
    }
    // The service answered both (the edge passes a well-formed id on).
    expect(await servedCalls({ code: "NOT_FOUND" })).toBe(notFound + 2);
    const malformed = await http1("/v1/sales/not-a-sale-id");
    expect({ status: malformed.status, type: malformed.headers["content-type"] }).toEqual({ status: 400, type: "application/json" });
    expect(JSON.parse(malformed.body)).toMatchObject({
      code: status.INVALID_ARGUMENT,
      details: expect.arrayContaining([
        expect.objectContaining({ "@type": "type.googleapis.com/google.rpc.BadRequest", fieldViolations: [expect.objectContaining({ field: "sale_id" })] }),
      ]),
    });
  });

  it("an unknown query parameter is refused by Envoy (400) and never reaches the service", async () => {
    for (const [path, field, type] of [
      [`/v1/sales/${sale.saleId}?foo=1`, "foo", "GetSaleRequest"],
      [`/v1/sales/${sale.saleId}/status?x=1`, "x", "GetSaleStatusRequest"],
    ]) {
      const r = await untouched(() => http1(path));
      expect({ path, status: r.status, server: r.headers.server }).toEqual({ path, status: 400, server: "seckill-edge" });
      expect(r.body).toBe(`Could not find field "${field}" in the type "seckill.v1.${type}".`);
    }
  });

  it("no other JSON: the rest of SaleService, other verbs and other paths are 404 at Envoy", async () => {
    const tries: [string, string][] = [
      ["POST", `/v1/sales/${sale.saleId}`],
      ["GET", "/v1/sales"],
      ["POST", "/v1/sales"],
      ["POST", `/v1/sales/${sale.saleId}:close`],
      ["POST", "/seckill.v1.SaleService/CreateSale"],
      ["GET", "/seckill.v1.SaleService/GetSale"],
    ];
    await untouched(async () => {
      for (const [method, path] of tries) {
        const r = await fetch(`${edgeUrl()}${path}`, { method, headers: { "content-type": "application/json" }, body: method === "POST" ? "{}" : undefined });
        expect(r.status, `${method} ${path}`).toBe(404);
        expect(r.headers.get("server")).toBe("seckill-edge");
      }
    });
  });
});

/** A method path the edge must not route, with a request message the service would accept. */
const hidden: [string, Buffer][] = [
  ...Object.values(InventoryServiceService).map((m) => [m.path, Buffer.alloc(0)] as [string, Buffer]),
  ...["createSale", "openSale", "closeSale", "warmSale", "reconcileSale"].map(
    (k) => [SaleServiceService[k as keyof typeof SaleServiceService].path, Buffer.alloc(0)] as [string, Buffer],
  ),
  ...Object.values(DeadLetterServiceService).map((m) => [m.path, Buffer.alloc(0)] as [string, Buffer]),
  // ServerReflectionRequest { list_services: "" } (field 7), for both versions.
  ["/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", Buffer.from([0x3a, 0x00])],
  ["/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", Buffer.from([0x3a, 0x00])],
  // HealthCheckRequest { service: "" }.
  ["/grpc.health.v1.Health/Check", Buffer.alloc(0)],
  ["/grpc.health.v1.Health/Watch", Buffer.alloc(0)],
];

describe.skipIf(!envoyBin)("what the edge does not expose", () => {
  it("reflection and health answer on the services themselves (the control for the next test)", async () => {
    const direct = connectHttp2(`http://${stack.inventory.address}`);
    direct.on("error", () => undefined);
    try {
      const reflection = await exchange(direct, { ":path": "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo" }, grpcMessage(Buffer.from([0x3a, 0x00])));
      expect(reflection.trailers["grpc-status"]).toBe("0");
      expect(reflection.data.toString("latin1")).toContain("seckill.v1.InventoryService");
      const health = await exchange(direct, { ":path": "/grpc.health.v1.Health/Check" }, grpcMessage(Buffer.alloc(0)));
      expect(health.trailers["grpc-status"]).toBe("0");
      expect(grpcMessagesOf(health.data)[0]).toEqual(Buffer.from([0x08, 0x01])); // SERVING
    } finally {
      direct.close();
    }
  });

  it("InventoryService, the operator methods, DeadLetterService, reflection and health: UNIMPLEMENTED from Envoy, nothing reaches a service", async () => {
    const session = await openSession();
    const client = rawClient(envoy.address);
    try {
      await untouched(async () => {
        for (const [path, body] of hidden) {
          // On the wire: a trailers-only answer of Envoy's (its 404 in gRPC form).
          const r = await exchange(session, { ":path": path }, grpcMessage(body));
          expect({ path, status: r.status, grpcStatus: r.headers["grpc-status"], server: r.headers.server }).toEqual({
            path,
            status: 200,
            grpcStatus: String(status.UNIMPLEMENTED),
            server: "seckill-edge",
          });
          // What a gRPC client makes of it.
          const method: AnyMethod = {
            path,
            requestStream: false,
            responseStream: path.endsWith("/Watch"),
            requestSerialize: (b: Buffer) => b,
            requestDeserialize: (b: Buffer) => b,
            responseSerialize: (b: Buffer) => b,
            responseDeserialize: (b: Buffer) => b,
          };
          expect((await callMethod(client, method, { bytes: body })).code, path).toBe(status.UNIMPLEMENTED);
        }
      });
      // The sale is still open: CloseSale never reached the inventory service.
      expect((await callUnary(stack.sales, "getSaleStatus", { saleId: sale.saleId })).phase).toBe(SalePhase.SALE_PHASE_OPEN);
      await getSaleOn(session);
    } finally {
      client.close();
      session.close();
    }
  });
});

describe.skipIf(!envoyBin)("bad input refused at the edge", () => {
  it(`headers over ${LOCAL_LIMITS.maxRequestHeadersKb} KiB or over ${LOCAL_LIMITS.maxHeadersCount} of them (HTTP/2): RST_STREAM INTERNAL_ERROR, a gRPC client sees INTERNAL; the connection goes on`, async () => {
    const session = await openSession();
    try {
      const [tooLarge, tooMany] = [await envoy.stat("http2.header_list_size_too_large"), await envoy.stat("http2.header_overflow")];
      await untouched(async () => {
        const big = await exchange(session, { ":path": GET_SALE, "x-user-id": "u".repeat(MAX_HEADERS_BYTES + 4096) }, getSaleMessage(sale.saleId));
        expect({ rst: big.rstCode, status: big.status }).toEqual({ rst: H2_ERROR.INTERNAL_ERROR, status: undefined });
        const many = Object.fromEntries(Array.from({ length: LOCAL_LIMITS.maxHeadersCount + 1 }, (_, i) => [`x-h${i}`, "v"]));
        const counted = await exchange(session, { ":path": GET_SALE, ...many }, getSaleMessage(sale.saleId));
        expect({ rst: counted.rstCode, status: counted.status }).toEqual({ rst: H2_ERROR.INTERNAL_ERROR, status: undefined });
      });
      expect(await envoy.stat("http2.header_list_size_too_large")).toBe(tooLarge + 1);
      expect(await envoy.stat("http2.header_overflow")).toBe(tooMany + 1);
      expect(session.closed || session.destroyed).toBe(false);
      await getSaleOn(session); // the same connection

      // A gRPC client (the generated client itself: the SDK's callUnary would not
      // send such metadata at all): the refusal is INTERNAL, and its next call (same channel) works.
      const client = new SaleServiceClient(envoy.address, credentials.createInsecure());
      try {
        const metadata = new Metadata();
        metadata.set("x-user-id", "u".repeat(MAX_HEADERS_BYTES + 4096));
        const direct = () =>
          new Promise<unknown>((resolve, reject) => client.getSale({ saleId: sale.saleId }, metadata, (error, response) => (error ? reject(error) : resolve(response))));
        const r = await untouched(() => refusal(direct()));
        expect(r.code).toBe(status.INTERNAL);
        expect(r.message).toMatch(/RST_STREAM with code 2/);
        expect((await callUnary(client, "getSale", { saleId: sale.saleId })).sale?.saleId).toBe(sale.saleId);
      } finally {
        client.close();
      }
    } finally {
      session.close();
    }
  });

  it("a 1 MB x-user-id (HTTP/2): GOAWAY COMPRESSION_ERROR, the whole connection is closed; other connections go on", async () => {
    // A header field that large is more than Envoy's HPACK decoder takes at
    // all (a 70 KB one still only resets its stream): the decoder cannot skip
    // it and stay in step with the connection's header compression, so the
    // connection ends, not the stream.
    const session = await openSession({ maxSendHeaderBlockLength: 4 * 1024 * 1024 });
    const protocolErrors = await envoy.stat("http.edge.downstream_cx_protocol_error");
    const r = await untouched(() => exchange(session, { ":path": GET_SALE, "x-user-id": "u".repeat(1024 * 1024) }, getSaleMessage(sale.saleId)));
    expect(r.status).toBeUndefined();
    expect(session.receivedGoaway).toBe(9); // COMPRESSION_ERROR
    await eventually(() => session.closed || session.destroyed, 5000, "the session to close");
    expect(await envoy.stat("http.edge.downstream_cx_protocol_error")).toBe(protocolErrors + 1);
    await getSaleOnAnotherConnection();
  });

  it("oversized headers over HTTP/1.1 (the JSON reads): 431, and the connection is closed", async () => {
    await untouched(async () => {
      for (const size of [MAX_HEADERS_BYTES + 4096, 1024 * 1024]) {
        const r = await new Promise<{ status: number; connection?: string }>((resolve, reject) => {
          const req = httpRequest({ host: "127.0.0.1", port: envoy.port, path: `/v1/sales/${sale.saleId}`, headers: { "x-user-id": "u".repeat(size) }, agent: false }, (res) => {
            res.resume();
            res.on("end", () => resolve({ status: res.statusCode!, connection: res.headers.connection }));
          });
          req.on("error", reject);
          req.end();
        });
        expect(r, `x-user-id of ${size} bytes`).toEqual({ status: 431, connection: "close" });
      }
    });
    expect((await http1(`/v1/sales/${sale.saleId}`)).status).toBe(200);
  });

  it(`a request body over ${MAX_REQUEST_BODY_BYTES / 1024} KiB: RESOURCE_EXHAUSTED from Envoy, nothing of it reaches the service; the same connection goes on`, async () => {
    const session = await openSession();
    try {
      const tooLarge = await envoy.stat("http.edge.downstream_rq_too_large");
      const r = await untouched(() => exchange(session, { ":path": GET_SALE }, getSaleMessage("s".repeat(MAX_REQUEST_BODY_BYTES))));
      expect({ status: r.status, grpcStatus: r.headers["grpc-status"], message: r.headers["grpc-message"] }).toEqual({
        status: 200,
        grpcStatus: String(status.RESOURCE_EXHAUSTED),
        message: "Payload Too Large",
      });
      expect(await envoy.stat("http.edge.downstream_rq_too_large")).toBe(tooLarge + 1);
      await getSaleOn(session);

      // A gRPC client sees RESOURCE_EXHAUSTED; just under the limit the call goes
      // through to the service, which judges the odd sale id itself.
      const client = new SaleServiceClient(envoy.address, credentials.createInsecure());
      try {
        const over = await untouched(() => refusal(callUnary(client, "getSale", { saleId: "s".repeat(MAX_REQUEST_BODY_BYTES) })));
        expect({ code: over.code, message: over.message }).toEqual({ code: status.RESOURCE_EXHAUSTED, message: "Payload Too Large" });
        const served = await servedCalls({ method: "GetSale", code: "INVALID_ARGUMENT" });
        const under = await refusal(callUnary(client, "getSale", { saleId: "s".repeat(MAX_REQUEST_BODY_BYTES - 64) }));
        expect(under.code).toBe(status.INVALID_ARGUMENT);
        expect(await servedCalls({ method: "GetSale", code: "INVALID_ARGUMENT" })).toBe(served + 1);
      } finally {
        client.close();
      }
    } finally {
      session.close();
    }
  });

  it(`request headers dripped over HTTP/1.1: 408 after ${HEADERS_TIMEOUT_MS} ms (request_headers_timeout), connection closed`, async () => {
    const timeouts = await envoy.stat("http.edge.downstream_rq_header_timeout");
    const { elapsedMs, response } = await untouched(
      () =>
        new Promise<{ elapsedMs: number; response: string }>((resolve) => {
          const socket = connectTcp(envoy.port, "127.0.0.1");
          const text = `GET /v1/sales/${sale.saleId} HTTP/1.1\r\nhost: edge\r\nx-user-id: ${"u".repeat(100)}\r\n\r\n`;
          const started = Date.now();
          let sent = 0;
          let response = "";
          // One byte every 100 ms: the whole request would take ~17 s.
          const drip = setInterval(() => (sent < text.length ? socket.write(text[sent++]) : clearInterval(drip)), 100);
          const giveUp = setTimeout(() => socket.destroy(), 10_000);
          socket.on("data", (d) => (response += String(d)));
          socket.on("error", () => undefined);
          socket.on("close", () => {
            clearInterval(drip);
            clearTimeout(giveUp);
            resolve({ elapsedMs: Date.now() - started, response });
          });
        }),
    );
    expect(response).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(response).toMatch(/\r\nconnection: close\r\n/);
    expect(elapsedMs).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS);
    expect(elapsedMs).toBeLessThan(HEADERS_TIMEOUT_MS + 3000);
    expect(await envoy.stat("http.edge.downstream_rq_header_timeout")).toBe(timeouts + 1);
    await getSaleOnAnotherConnection();
  });

  it(`a header block left unfinished (HTTP/2): after ${HEADERS_TIMEOUT_MS} ms Envoy answers 408 on that stream and resets it; the connection goes on`, async () => {
    const raw = await openRawH2(envoy.port, { ackSettings: true });
    try {
      const timeouts = await envoy.stat("http.edge.downstream_rq_header_timeout");
      const block = headerBlock(grpcRequestHeaders(GET_SALE, envoy.address));
      const started = Date.now();
      await untouched(async () => {
        raw.send(frame(FRAME.HEADERS, 0, 1, block.subarray(0, 12))); // no END_HEADERS: more should follow
        const reset = await raw.waitFor((f) => f.streamId === 1 && f.type === FRAME.RST_STREAM, HEADERS_TIMEOUT_MS + 3000, "a reset of stream 1");
        expect(reset.at - started).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 50);
      });
      expect(raw.resetCode(1)).toBe(H2_ERROR.NO_ERROR);
      // Envoy's answer before the reset: response headers and the body "request header timeout".
      expect(raw.stream(1).map((f) => f.type)).toEqual([FRAME.HEADERS, FRAME.DATA, FRAME.RST_STREAM]);
      expect(raw.dataOf(1).toString()).toBe("request header timeout");
      expect(await envoy.stat("http.edge.downstream_rq_header_timeout")).toBe(timeouts + 1);
      // The sender finishes its block (HPACK requires it); then a new stream on the same connection works.
      raw.send(frame(FRAME.CONTINUATION, FLAG.END_HEADERS, 1, block.subarray(12)));
      raw.send(frame(FRAME.HEADERS, FLAG.END_HEADERS, 3, block));
      raw.send(frame(FRAME.DATA, FLAG.END_STREAM, 3, getSaleMessage(sale.saleId)));
      await raw.waitFor((f) => f.streamId === 3 && (f.flags & FLAG.END_STREAM) !== 0, 5000, "the end of stream 3");
      expect(saleIdOn(raw, 3)).toBe(sale.saleId);
      expect(raw.closed()).toBe(false);
    } finally {
      raw.close();
    }
  });

  it(`more than ${MAX_STREAMS} streams on a connection, before the client acknowledged the limit: the extra stream is refused (RST_STREAM REFUSED_STREAM), the others and the connection go on`, async () => {
    const raw = await openRawH2(envoy.port, { ackSettings: false });
    try {
      expect(raw.settings.get(SETTINGS_MAX_CONCURRENT_STREAMS)).toBe(MAX_STREAMS);
      const refused = await envoy.stat("http2.stream_refused_errors");
      const [served, upstream] = [await servedCalls({ method: "GetSale" }), await upstreamRequests()];
      const block = headerBlock(grpcRequestHeaders(GET_SALE, envoy.address));
      // Streams 1, 3, 5, 7 open (headers sent, no body yet), then one more.
      const open = Array.from({ length: MAX_STREAMS }, (_, i) => 1 + 2 * i);
      const extra = 1 + 2 * MAX_STREAMS;
      for (const id of [...open, extra]) raw.send(frame(FRAME.HEADERS, FLAG.END_HEADERS, id, block));
      await raw.waitFor((f) => f.streamId === extra && f.type === FRAME.RST_STREAM, 3000, `a reset of stream ${extra}`);
      expect(raw.resetCode(extra)).toBe(H2_ERROR.REFUSED_STREAM);
      expect(open.map((id) => raw.resetCode(id))).toEqual(open.map(() => undefined));
      expect(await envoy.stat("http2.stream_refused_errors")).toBe(refused + 1);
      // The open streams finish: each answers the sale.
      for (const id of open) raw.send(frame(FRAME.DATA, FLAG.END_STREAM, id, getSaleMessage(sale.saleId)));
      for (const id of open) await raw.waitFor((f) => f.streamId === id && (f.flags & FLAG.END_STREAM) !== 0, 5000, `the end of stream ${id}`);
      expect(open.map((id) => saleIdOn(raw, id))).toEqual(open.map(() => sale.saleId));
      // A new stream on the same connection works too.
      const next = extra + 2;
      raw.send(frame(FRAME.HEADERS, FLAG.END_HEADERS, next, block));
      raw.send(frame(FRAME.DATA, FLAG.END_STREAM, next, getSaleMessage(sale.saleId)));
      await raw.waitFor((f) => f.streamId === next && (f.flags & FLAG.END_STREAM) !== 0, 5000, `the end of stream ${next}`);
      expect(saleIdOn(raw, next)).toBe(sale.saleId);
      // Only the streams that were let in reached the service: the refused one never did.
      expect({ served: (await servedCalls({ method: "GetSale" })) - served, upstream: (await upstreamRequests()) - upstream }).toEqual({
        served: MAX_STREAMS + 1,
        upstream: MAX_STREAMS + 1,
      });
    } finally {
      raw.close();
    }
    await getSaleOnAnotherConnection();
  });

  it(`more than ${MAX_STREAMS} streams after the client acknowledged the limit: Envoy closes the whole connection (a protocol error); others go on`, async () => {
    // Envoy's HTTP/2 codec treats a stream over a limit the client has
    // acknowledged as a connection error: it closes the connection without a
    // GOAWAY, ending every stream on it. Clients that honour SETTINGS (grpc-js,
    // grpc-go, Node's http2) queue their calls instead (see the next test).
    const raw = await openRawH2(envoy.port, { ackSettings: true });
    try {
      await raw.waitFor((f) => f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) !== 0, 3000, "the ack of our SETTINGS");
      const protocolErrors = await envoy.stat("http.edge.downstream_cx_protocol_error");
      const block = headerBlock(grpcRequestHeaders(GET_SALE, envoy.address));
      for (let i = 0; i <= MAX_STREAMS; i++) raw.send(frame(FRAME.HEADERS, FLAG.END_HEADERS, 1 + 2 * i, block));
      expect(await raw.whenClosed(5000)).toBe(true);
      expect(raw.frames.filter((f) => f.streamId !== 0)).toEqual([]);
      expect(raw.frames.some((f) => f.type === FRAME.GOAWAY)).toBe(false);
      expect(await envoy.stat("http.edge.downstream_cx_protocol_error")).toBe(protocolErrors + 1);
    } finally {
      raw.close();
    }
    await getSaleOnAnotherConnection();
  });

  it(`a gRPC client making ${3 * MAX_STREAMS} calls at once on one connection is never refused: it waits for free streams`, async () => {
    const client = new SaleServiceClient(envoy.address, credentials.createInsecure());
    try {
      const refused = await envoy.stat("http2.stream_refused_errors");
      const results = await Promise.all(Array.from({ length: 3 * MAX_STREAMS }, () => callUnary(client, "getSale", { saleId: sale.saleId })));
      expect(results.map((r) => r.sale?.saleId)).toEqual(results.map(() => sale.saleId));
      expect(await envoy.stat("http2.stream_refused_errors")).toBe(refused);
    } finally {
      client.close();
    }
  });

  it("a non-gRPC content type on a gRPC route: 404 from Envoy (the routes match gRPC only); the same connection goes on", async () => {
    const session = await openSession();
    try {
      const answered4xx = await envoy.stat("http.edge.downstream_rq_4xx");
      await untouched(async () => {
        for (const contentType of ["application/json", "text/plain", "application/x-www-form-urlencoded", "application/grpc-web-text"]) {
          const r = await exchange(session, { ":path": GET_SALE, "content-type": contentType }, getSaleMessage(sale.saleId));
          expect({ contentType, status: r.status, server: r.headers.server, grpcStatus: r.headers["grpc-status"] }).toEqual({
            contentType,
            status: 404,
            server: "seckill-edge",
            grpcStatus: undefined,
          });
        }
        // No content type at all.
        const bare = session.request({ ":method": "POST", ":path": GET_SALE });
        const bareStatus = new Promise<number>((resolve) => bare.on("response", (h) => resolve(Number(h[":status"]))));
        bare.end(getSaleMessage(sale.saleId));
        expect(await bareStatus).toBe(404);
      });
      expect(await envoy.stat("http.edge.downstream_rq_4xx")).toBe(answered4xx + 5);
      await getSaleOn(session);
    } finally {
      session.close();
    }
  });
});

beforeAll(async () => {
  if (!envoyBin) return;
  stack = await startTestStack();
  // No gateway here: the global rate limit fails open, and jwt_authn (PlaceOrder only) is not used.
  envoy = await startEdge(envoyBin, {
    clusters: stackClusters(stack),
    limits: { maxConcurrentStreams: MAX_STREAMS, requestHeadersTimeoutMs: HEADERS_TIMEOUT_MS },
  });
  sales = new SaleServiceClient(envoy.address, credentials.createInsecure());
  sale = await stack.createSale({ totalStock: 7 });
  await eventually(
    async () =>
      callUnary(sales, "getSale", { saleId: sale.saleId }, { deadlineMs: 1000 }).then(
        () => true,
        () => false,
      ),
    20_000,
    "envoy to route GetSale",
  );
});

afterAll(async () => {
  sales?.close();
  await envoy?.stop();
  await stack?.stop();
});
