// The edge refusals as a grpc-js client received them from Envoy 1.40.0 running
// the generated edge configuration in front of a test stack (the same answers
// are checked against a live Envoy in cli/test/edge.test.ts), and the routing
// of simulate's calls against the edge's route table.
import { describe, expect, it } from "vitest";
import { Metadata, status } from "@grpc/grpc-js";
import { EDGE_LIMITED_HEADER, edgeRefusalOf, rejectionMetadata } from "@seckill/sdk";
import { EDGE_METHODS, buildRouteConfig } from "../../envoy/src/routes.js";
import { LOCAL_TOPOLOGY } from "../../envoy/src/topology.js";
import { BUYER_METHODS, DEFAULT_EDGE_ADDRESS, DIRECT_METHODS, connectionCause, edgeProblem } from "./edge.js";

function answer(code: status, details: string, headers: Record<string, string> = {}, base?: Metadata) {
  const metadata = base ?? new Metadata();
  for (const [k, v] of Object.entries(headers)) metadata.set(k, v);
  return Object.assign(new Error(details), { code, details, metadata });
}
/** What Envoy puts on every answer of its own. */
const envoyHeaders = { "content-type": "application/grpc", date: "Wed, 02 Dec 2026 09:53:40 GMT", server: "seckill-edge" };
const realm = 'Bearer realm="http://127.0.0.1:12536/seckill.v1.OrderService/PlaceOrder"';

/** Envoy's answers, as received. */
const ENVOY_ANSWERS = {
  tokenBucket: answer(status.RESOURCE_EXHAUSTED, "local_rate_limited", { "x-seckill-limited": "edge", ...envoyHeaders }),
  globalLimit: answer(status.RESOURCE_EXHAUSTED, "", {
    "ratelimit-limit": "2, 2;w=60",
    "ratelimit-remaining": "0",
    "ratelimit-reset": "19",
    "x-envoy-ratelimited": "true",
    ...envoyHeaders,
  }),
  jwtMissing: answer(status.UNAUTHENTICATED, "Jwt is missing", { "www-authenticate": realm, ...envoyHeaders }),
  jwtMalformed: answer(status.UNAUTHENTICATED, "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections", {
    "www-authenticate": `${realm}, error="invalid_token"`,
    ...envoyHeaders,
  }),
  jwtBadSignature: answer(status.UNAUTHENTICATED, "Jwt verification fails", { "www-authenticate": `${realm}, error="invalid_token"`, ...envoyHeaders }),
  upstreamDown: answer(status.UNAVAILABLE, "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure", envoyHeaders),
  unrouted: answer(status.UNIMPLEMENTED, "", envoyHeaders),
  /** grpc-js, when the listener's connection limit closed the connection. */
  connectionLimit: answer(status.UNAVAILABLE, "No connection established. Last error: Failed to connect (2026-12-02T09:53:44.720Z). Resolution note: "),
  /** grpc-js, when nothing listens. */
  refused: answer(status.UNAVAILABLE, "No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:8080. Resolution note: "),
};

/** A service's own refusal forwarded by Envoy: its reason, plus the gateway's rate limit headers of the allowed call. */
const fromService = (code: status, message: string, reason: string) =>
  answer(code, message, { "ratelimit-limit": "1000, 1000;w=1", "ratelimit-remaining": "999", "ratelimit-reset": "1", ...envoyHeaders }, rejectionMetadata(code, message, reason));

describe("edgeRefusalOf", () => {
  it("reads each kind of Envoy's own refusal", () => {
    expect(edgeRefusalOf(ENVOY_ANSWERS.tokenBucket)).toBe("tokenBucket");
    expect(edgeRefusalOf(ENVOY_ANSWERS.globalLimit)).toBe("globalLimit");
    expect(edgeRefusalOf(ENVOY_ANSWERS.jwtMissing)).toBe("tokenCheck");
    expect(edgeRefusalOf(ENVOY_ANSWERS.jwtMalformed)).toBe("tokenCheck");
    expect(edgeRefusalOf(ENVOY_ANSWERS.jwtBadSignature)).toBe("tokenCheck");
    expect(edgeRefusalOf(ENVOY_ANSWERS.upstreamDown)).toBe("connection");
    expect(edgeRefusalOf(ENVOY_ANSWERS.connectionLimit)).toBe("connection");
    expect(edgeRefusalOf(ENVOY_ANSWERS.refused)).toBe("connection");
  });

  it("never counts a service's own answer, forwarded through the edge, as the edge's", () => {
    expect(edgeRefusalOf(fromService(status.RESOURCE_EXHAUSTED, "too many requests", "RATE_LIMITED"))).toBeUndefined();
    expect(edgeRefusalOf(fromService(status.RESOURCE_EXHAUSTED, "too many watches on this connection", "TOO_MANY_WATCHES"))).toBeUndefined();
    expect(edgeRefusalOf(fromService(status.UNAVAILABLE, "shedding load", "OVERLOADED"))).toBeUndefined();
    expect(edgeRefusalOf(fromService(status.UNAUTHENTICATED, "purchase token expired", "PURCHASE_TOKEN_INVALID"))).toBeUndefined();
    expect(edgeRefusalOf(fromService(status.PERMISSION_DENIED, "purchase token invalid: the token is for another user", "PURCHASE_TOKEN_INVALID"))).toBeUndefined();
    expect(edgeRefusalOf(fromService(status.FAILED_PRECONDITION, "sold out", "SOLD_OUT"))).toBeUndefined();
  });

  it("leaves other answers alone: unrouted methods, deadlines, a RESOURCE_EXHAUSTED without Envoy's headers", () => {
    expect(edgeRefusalOf(ENVOY_ANSWERS.unrouted)).toBeUndefined();
    expect(edgeRefusalOf(answer(status.DEADLINE_EXCEEDED, "Deadline exceeded"))).toBeUndefined();
    // The route timeout: the service had the call; a lost answer, retried, not a refusal.
    expect(edgeRefusalOf(answer(status.UNAVAILABLE, "upstream request timeout", envoyHeaders))).toBeUndefined();
    expect(edgeRefusalOf(answer(status.RESOURCE_EXHAUSTED, "Received message larger than max"))).toBeUndefined();
  });
});

describe("connectionCause", () => {
  it("counts refusals of one cause together", () => {
    expect(connectionCause(ENVOY_ANSWERS.connectionLimit.details)).toBe("No connection established. Last error: Failed to connect");
    expect(connectionCause(ENVOY_ANSWERS.refused.details)).toBe("No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:8080");
    expect(connectionCause(ENVOY_ANSWERS.upstreamDown.details)).toBe(ENVOY_ANSWERS.upstreamDown.details);
    expect(connectionCause("")).toBe("(no message)");
  });
});

describe("edgeProblem", () => {
  it("tells a missing edge from a missing service behind it, and says how to go direct", () => {
    expect(edgeProblem("127.0.0.1:8080", "the gateway", ENVOY_ANSWERS.refused)).toBe(
      "cannot reach the edge (Envoy) at 127.0.0.1:8080 — is it running? npm start runs it in front of the services when it finds Envoy " +
        "(npm run envoy:install); or point --edge at it, or call the services directly: seckill simulate --direct",
    );
    expect(edgeProblem("127.0.0.1:8080", "the flash-sale inventory service", ENVOY_ANSWERS.upstreamDown)).toMatch(
      /^the edge at 127\.0\.0\.1:8080 answers but cannot reach the flash-sale inventory service behind it \(upstream connect error/,
    );
    expect(edgeProblem("h:1", "the gateway", ENVOY_ANSWERS.unrouted)).toBe("h:1 does not route calls to the gateway — is --edge the address of the Seckill edge?");
    expect(edgeProblem("h:1", "the gateway", answer(status.INVALID_ARGUMENT, "sale_id", envoyHeaders))).toBeUndefined();
    expect(edgeProblem("h:1", "the gateway", undefined)).toBeUndefined();
  });
});

describe("simulate's routes", () => {
  const routed = (path: string) => EDGE_METHODS.some((m) => (m.path.endsWith("/") ? path.startsWith(m.path) : path === m.path));

  it("sends through the edge only methods it routes, and directly what it does not (CreateSale)", () => {
    for (const path of BUYER_METHODS) expect(routed(path), path).toBe(true);
    expect(routed("/seckill.v1.SaleService/CreateSale")).toBe(false);
    expect(DIRECT_METHODS).toContain("/seckill.v1.SaleService/CreateSale");
  });

  it("uses npm start's edge address and the token bucket's refusal header", () => {
    const { host, port } = LOCAL_TOPOLOGY.listener;
    expect(DEFAULT_EDGE_ADDRESS).toBe(`${host}:${port}`);
    const config = JSON.stringify(buildRouteConfig(LOCAL_TOPOLOGY));
    expect(config).toContain(JSON.stringify({ key: EDGE_LIMITED_HEADER.name, value: EDGE_LIMITED_HEADER.value }));
  });
});
