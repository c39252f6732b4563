// One purchase followed across every process it touches: through a real Envoy
// to the order, inventory and order writer processes (each its own process, as
// deployed), over gRPC metadata and JetStream message headers. Without an
// exporter the client's trace id is passed on and logged by each; with an OTLP
// collector (a stand-in on loopback recording what it is sent) each exports
// its spans, all of one trace, each with its parent in the process before.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { credentials } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { callUnary, OrderServiceClient, purchaseMetadata, userMetadata, type Order } from "@seckill/sdk";
import { startFaultStack, type FaultService, type FaultStack } from "./support/fault-stack.js";
import { loopback, startEdge, type Edge } from "./support/edge.js";
import { envoyForTests } from "./support/envoy.js";
import { eventually } from "./support/stack.js";
import type { ClusterName, HostPort } from "../envoy/src/topology.js";

const envoyBin = envoyForTests("the trace tests");

const portOf = (address: string) => Number(address.slice(address.lastIndexOf(":") + 1));

/** Every cluster of the edge pointed at the fault stack's processes. */
function clustersOf(stack: FaultStack): Partial<Record<ClusterName, HostPort>> {
  const { config } = stack;
  return {
    order_flash: loopback(portOf(config.orderAddr)),
    order_default: loopback(portOf(config.orderAddr)),
    inventory_flash: loopback(portOf(config.inventoryAddr)),
    inventory_default: loopback(portOf(config.inventoryAddr)),
    gateway: loopback(portOf(config.gatewayAddr)),
    gateway_jwks: loopback(Number(new URL(config.purchaseTokenJwksUrl).port)),
  };
}

/** Each service's log lines, as JSON objects (other output is left out). */
function logCapture() {
  const lines: Record<FaultService, Record<string, unknown>[]> = { inventory: [], order: [], writer: [], gateway: [] };
  return {
    lines,
    onOutput: (service: FaultService, line: string) => {
      try {
        lines[service].push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a log line
      }
    },
  };
}

/** One purchase through the edge (a token from the gateway first); retried while Envoy has not fetched the keys yet. */
async function buyThroughEdge(stack: FaultStack, edge: Edge, userId: string, traceparent?: string): Promise<Order> {
  const sale = await stack.createSale({ totalStock: 5 });
  const { token } = await callUnary(stack.access!, "issuePurchaseToken", { saleId: sale.saleId, challengeId: "", challengeAnswer: "" }, { metadata: userMetadata(userId) });
  const orders = new OrderServiceClient(edge.address, credentials.createInsecure());
  try {
    const metadata = purchaseMetadata(userId, sale.saleId, token);
    if (traceparent) metadata.set("traceparent", traceparent);
    let order: Order | undefined;
    await eventually(
      async () => {
        const answer = await callUnary(
          orders,
          "placeOrder",
          { saleId: sale.saleId, quantity: 1, requestId: `trace-${userId}`, purchaseToken: "", retry: false },
          { metadata, deadlineMs: 5000 },
        ).catch(() => undefined);
        order = answer?.order;
        return order !== undefined;
      },
      15_000,
      "a purchase through the edge",
    );
    return order!;
  } finally {
    orders.close();
  }
}

const withTrace = (lines: Record<string, unknown>[], traceId: string) => lines.filter((l) => l.traceId === traceId);

describe.skipIf(!envoyBin)("a purchase's trace, without an exporter", () => {
  let stack: FaultStack;
  let edge: Edge;
  const logs = logCapture();

  beforeAll(async () => {
    stack = await startFaultStack({ gateway: true, env: { LOG_LEVEL: "debug", WRITER_LINGER_MS: "0" }, onOutput: logs.onOutput });
    edge = await startEdge(envoyBin!, { clusters: clustersOf(stack) });
  }, 120_000);

  afterAll(async () => {
    await edge?.stop();
    await stack?.stop();
  }, 60_000);

  it("passes the client's trace id through Envoy, order, inventory, JetStream and the writer, and each logs it", async () => {
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const clientSpanId = "00f067aa0ba902b7";
    const order = await buyThroughEdge(stack, edge, "trace-user-1", `00-${traceId}-${clientSpanId}-01`);
    await stack.drained();
    await eventually(() => withTrace(logs.lines.writer, traceId).length > 0, 10_000, "the writer's line of the trace");

    const placed = withTrace(logs.lines.order, traceId).find((l) => l.msg === "call answered" && l.method === "PlaceOrder");
    expect(placed).toMatchObject({ code: "OK", service: "order" });
    const reserved = withTrace(logs.lines.inventory, traceId).find((l) => l.msg === "call answered" && l.method === "Reserve");
    expect(reserved).toMatchObject({ code: "OK", service: "inventory" });
    expect(withTrace(logs.lines.writer, traceId).map((l) => l.msg)).toContain("batch written");
    // No exporter: nothing is recorded, the ids come through as they were sent.
    expect(placed!.spanId).toBe(clientSpanId);
    expect(order.orderId).not.toBe("");
  });

  it("logs no trace id for a purchase that came without one", async () => {
    const before = logs.lines.order.length;
    await buyThroughEdge(stack, edge, "trace-user-2");
    const answered = logs.lines.order.slice(before).filter((l) => l.msg === "call answered");
    const traced = logs.lines.order.slice(before).filter((l) => l.traceId !== undefined);
    expect(answered).toEqual([]);
    expect(traced).toEqual([]);
  });
});

/** What an OTLP/HTTP collector is sent: the services' JSON spans, and Envoy's protobuf bodies as they came. */
interface Received {
  spans: { service: string; traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number; links?: { traceId: string; spanId: string }[] }[];
  protobuf: Buffer[];
}

interface OtlpJson {
  resourceSpans: {
    resource: { attributes: { key: string; value: { stringValue?: string } }[] };
    scopeSpans: { spans: Received["spans"] }[];
  }[];
}

/** A collector stand-in on loopback: records what is posted to /v1/traces and answers 200. */
async function startCollector(): Promise<{ server: Server; port: number; received: Received }> {
  const received: Received = { spans: [], protobuf: [] };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      if (req.url === "/v1/traces" && String(req.headers["content-type"]).startsWith("application/json")) {
        for (const rs of (JSON.parse(body.toString("utf8")) as OtlpJson).resourceSpans) {
          const service = rs.resource.attributes.find((a) => a.key === "service.name")?.value.stringValue ?? "";
          for (const ss of rs.scopeSpans) for (const span of ss.spans) received.spans.push({ ...span, service });
        }
      } else if (req.url === "/v1/traces") {
        received.protobuf.push(body);
      }
      res.writeHead(200, { "content-type": req.headers["content-type"] ?? "application/json" });
      res.end(String(req.headers["content-type"]).startsWith("application/json") ? "{}" : undefined);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, port: (server.address() as AddressInfo).port, received };
}

describe.skipIf(!envoyBin)("a purchase's trace, exported over OTLP", () => {
  let stack: FaultStack;
  let edge: Edge;
  let collector: Awaited<ReturnType<typeof startCollector>>;
  const logs = logCapture();

  beforeAll(async () => {
    collector = await startCollector();
    stack = await startFaultStack({
      gateway: true,
      env: {
        LOG_LEVEL: "debug",
        WRITER_LINGER_MS: "0",
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${collector.port}`,
        // The SDK's standard batch delay, short so that the spans arrive while the test waits.
        OTEL_BSP_SCHEDULE_DELAY: "100",
      },
      onOutput: logs.onOutput,
    });
    edge = await startEdge(envoyBin!, { clusters: clustersOf(stack), otlpCollector: loopback(collector.port) });
  }, 120_000);

  afterAll(async () => {
    await edge?.stop();
    await stack?.stop();
    await new Promise((resolve) => collector?.server.close(resolve));
  }, 60_000);

  it("Envoy starts the trace; order, inventory and the writer export spans of it, each under the span before", async () => {
    await buyThroughEdge(stack, edge, "trace-user-3");
    await stack.drained();
    const spans = () => collector.received.spans;
    const placeOrderSpan = () => spans().find((s) => s.service === "order" && s.name === "seckill.v1.OrderService/PlaceOrder");
    await eventually(() => placeOrderSpan() !== undefined, 15_000, "the order service's span");
    const placeOrder = placeOrderSpan()!;
    const { traceId } = placeOrder;
    // Read afresh at each look: the processes export their spans on their own schedules.
    const find = (service: string, name: string) => spans().find((s) => s.traceId === traceId && s.service === service && s.name === name);
    const expected = [
      ["order", "seckill.v1.InventoryService/Reserve"],
      ["inventory", "seckill.v1.InventoryService/Reserve"],
      ["inventory", "send reservations"],
      ["order-writer", "write orders"],
    ] as const;
    await eventually(() => expected.every(([service, name]) => find(service, name) !== undefined), 15_000, "the spans of order, inventory and the writer");
    const [reserveClient, reserveServer, publish, write] = expected.map(([service, name]) => find(service, name));
    // Envoy started the trace: the order service's span has a parent it did not make, which Envoy sent to the collector.
    expect(placeOrder.parentSpanId).toMatch(/^[0-9a-f]{16}$/);
    await eventually(() => collector.received.protobuf.some((b) => b.includes(Buffer.from(traceId, "hex"))), 10_000, "Envoy's span of the trace");
    expect(reserveClient?.parentSpanId).toBe(placeOrder.spanId);
    expect(reserveServer?.parentSpanId).toBe(reserveClient?.spanId);
    expect(publish?.parentSpanId).toBe(reserveServer?.spanId);
    expect(write?.parentSpanId).toBe(publish?.spanId);

    // And the trace id is in each process's log lines about it.
    for (const service of ["order", "inventory", "writer"] as const) expect(withTrace(logs.lines[service], traceId).length).toBeGreaterThan(0);
  });
});
