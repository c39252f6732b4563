// A service that refuses a stream unseen — RST_STREAM REFUSED_STREAM, or a
// GOAWAY whose last stream id is below it, as node's HTTP/2 stack does after a
// flood of resets — costs the client nothing at the edge: Envoy sends the call
// again, PlaceOrder-like writes included (the service never saw it). And the
// gateway's RateLimitService has connections of its own, apart from the
// buyers' AccessService calls. The gateway here is a bare node:http2 server
// that refuses as told and answers everything else with an empty OK.
import { createServer, constants, type Http2Server, type ServerHttp2Session, type ServerHttp2Stream } from "node:http2";
import { credentials, Metadata, status } from "@grpc/grpc-js";
import { afterAll, beforeAll, expect, it } from "vitest";
import { AccessServiceClient, callUnary, SaleServiceClient } from "@seckill/sdk";
import { RATE_LIMIT_CLUSTER } from "./src/topology.js";
import { loopback, startEdge, type Edge } from "../test/support/edge.js";
import { envoyForTests } from "../test/support/envoy.js";
import { grpcMessage } from "../test/support/h2-frames.js";

const envoyBin = envoyForTests("the refused-stream edge tests");
const ISSUE_TOKEN = "/seckill.v1.AccessService/IssuePurchaseToken";
const HEALTH_CHECK = "/grpc.health.v1.Health/Check";

type Refusal = "refused-stream" | "goaway";

interface FakeGateway {
  server: Http2Server;
  port: number;
  /** Calls per gRPC path, health checks left out; refused ones included. */
  seen: Map<string, number>;
  /** How to refuse the next calls to a path, one entry a call. */
  refuse: Map<string, Refusal[]>;
}

function answerOk(stream: ServerHttp2Stream, message: Uint8Array) {
  stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
  stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
  stream.end(grpcMessage(message));
}

const sessions = new Set<ServerHttp2Session>();

async function startFakeGateway(): Promise<FakeGateway> {
  const fake: FakeGateway = { server: createServer(), port: 0, seen: new Map(), refuse: new Map() };
  fake.server.on("session", (session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
  });
  fake.server.on("stream", (stream, headers) => {
    stream.on("error", () => undefined);
    const path = String(headers[":path"]);
    // HealthCheckResponse { status: SERVING }: field 1, varint 1.
    if (path === HEALTH_CHECK) return void stream.on("end", () => answerOk(stream, Uint8Array.of(0x08, 0x01))).resume();
    fake.seen.set(path, (fake.seen.get(path) ?? 0) + 1);
    const refusal = fake.refuse.get(path)?.shift();
    if (refusal === "refused-stream") return void stream.close(constants.NGHTTP2_REFUSED_STREAM);
    if (refusal === "goaway") return void stream.session?.goaway(constants.NGHTTP2_NO_ERROR, (stream.id ?? 1) - 2);
    stream.on("end", () => answerOk(stream, new Uint8Array())).resume();
  });
  await new Promise<void>((resolve) => fake.server.listen(0, "127.0.0.1", resolve));
  fake.port = (fake.server.address() as { port: number }).port;
  return fake;
}

let fake: FakeGateway;
let edge: Edge;
let access: AccessServiceClient;

beforeAll(async () => {
  if (!envoyBin) return;
  fake = await startFakeGateway();
  edge = await startEdge(envoyBin, { clusters: { gateway: loopback(fake.port) } });
  access = new AccessServiceClient(edge.address, credentials.createInsecure());
});

afterAll(async () => {
  access?.close();
  await edge?.stop();
  for (const session of sessions) session.destroy();
  await new Promise((resolve) => (fake ? fake.server.close(resolve) : resolve(null)));
});

const issueToken = () => {
  const md = new Metadata();
  md.set("x-user-id", "refused-buyer");
  return callUnary(access, "issuePurchaseToken", { saleId: "01HZZZZZZZZZZZZZZZZZZZZZZZ", challengeId: "", challengeAnswer: "" }, { metadata: md, deadlineMs: 5000 });
};

it.skipIf(!envoyBin)("sends a write again when the service refused its stream unseen (REFUSED_STREAM)", async () => {
  fake.refuse.set(ISSUE_TOKEN, ["refused-stream"]);
  const before = fake.seen.get(ISSUE_TOKEN) ?? 0;
  await expect(issueToken()).resolves.toBeDefined();
  expect((fake.seen.get(ISSUE_TOKEN) ?? 0) - before).toBe(2);
  expect(await edge.stat("cluster.gateway.upstream_rq_retry_success")).toBeGreaterThanOrEqual(1);
});

it.skipIf(!envoyBin)("sends a write again on a new connection when the service's GOAWAY left its stream unseen", async () => {
  fake.refuse.set(ISSUE_TOKEN, ["goaway"]);
  const before = fake.seen.get(ISSUE_TOKEN) ?? 0;
  await expect(issueToken()).resolves.toBeDefined();
  expect((fake.seen.get(ISSUE_TOKEN) ?? 0) - before).toBe(2);
});

it.skipIf(!envoyBin)("sends a refused call once again, not more: a service refusing every stream is UNAVAILABLE", async () => {
  fake.refuse.set(ISSUE_TOKEN, ["refused-stream", "refused-stream", "refused-stream"]);
  const before = fake.seen.get(ISSUE_TOKEN) ?? 0;
  await expect(issueToken()).rejects.toMatchObject({ code: status.UNAVAILABLE });
  expect((fake.seen.get(ISSUE_TOKEN) ?? 0) - before).toBe(2);
  fake.refuse.delete(ISSUE_TOKEN);
});

it.skipIf(!envoyBin)("asks the rate limit service over a cluster of its own, not the buyers' AccessService connections", async () => {
  const sales = new SaleServiceClient(edge.address, credentials.createInsecure());
  try {
    const [rls, gateway] = [await edge.stat(`cluster.${RATE_LIMIT_CLUSTER}.upstream_rq_total`), await edge.stat("cluster.gateway.upstream_rq_total")];
    // GetSale's upstream is closed here; its rate limit check still goes out first.
    await callUnary(sales, "getSale", { saleId: "01HZZZZZZZZZZZZZZZZZZZZZZZ" }, { deadlineMs: 5000 }).catch(() => undefined);
    expect(await edge.stat(`cluster.${RATE_LIMIT_CLUSTER}.upstream_rq_total`)).toBeGreaterThan(rls);
    expect(await edge.stat("cluster.gateway.upstream_rq_total")).toBe(gateway);
    expect(fake.seen.get("/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit")).toBeGreaterThanOrEqual(1);
  } finally {
    sales.close();
  }
});
