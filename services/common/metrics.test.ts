// The metrics module on real HTTP and gRPC servers: one registry per app, the
// /metrics endpoint, bounded stock series, and the calls counted in one place
// by the gRPC server (codes, latencies, refusals by reason, load shedding).
import { setTimeout as sleep } from "node:timers/promises";
import { sample } from "../../test/support/prometheus.js";
import { afterEach, describe, expect, it } from "vitest";
import { credentials, status, type ServerUnaryCall, type sendUnaryData } from "@grpc/grpc-js";
import { callUnary, InventoryServiceClient, InventoryServiceService, rejectionOf, type GetStockRequest, type GetStockResponse, type InventoryServiceServer } from "@seckill/sdk";
import { startGrpcServer, unary, type RunningGrpcServer } from "./grpc-server.js";
import { createLogger, quietLogger } from "./log.js";
import { createMetrics, serveMetrics, STOCK_IDLE_MS, type MetricsEndpoint } from "./metrics.js";
import { invalid, refuse } from "./refusal.js";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function serve(metrics: ReturnType<typeof createMetrics>): Promise<MetricsEndpoint> {
  const endpoint = await serveMetrics(metrics.registry, "127.0.0.1:0", quietLogger());
  cleanups.push(() => endpoint.close());
  return endpoint;
}

describe("createMetrics", () => {
  it("keeps two apps in one process apart, each sample labelled with its service and group", async () => {
    const inventory = createMetrics({ service: "inventory", group: "default" });
    const flash = createMetrics({ service: "inventory", group: "flash" });
    inventory.inventory().reservation("OK");
    inventory.inventory().reservation("OK");
    flash.inventory().reservation("SOLD_OUT");
    const [a, b] = [await inventory.registry.metrics(), await flash.registry.metrics()];
    expect(sample(a, "seckill_reservations_total", { outcome: "OK", service: "inventory", group: "default" })).toBe(2);
    expect(sample(a, "seckill_reservations_total", { outcome: "SOLD_OUT" })).toBeUndefined();
    expect(sample(b, "seckill_reservations_total", { outcome: "SOLD_OUT", group: "flash" })).toBe(1);
    expect(sample(b, "seckill_reservations_total", { outcome: "OK" })).toBeUndefined();
  });

  it("adds the process metrics only when asked", async () => {
    const served = createMetrics({ service: "order", group: "default", processMetrics: true });
    const plain = createMetrics({ service: "order", group: "default" });
    expect(sample(await served.registry.metrics(), "seckill_process_resident_memory_bytes", { service: "order" })).toBeGreaterThan(0);
    expect(await plain.registry.getSingleMetric("seckill_process_resident_memory_bytes")).toBeUndefined();
  });

  it("drops a sale's stock series when the sale ends or after an hour without answers", async () => {
    let now = 1_000_000;
    const metrics = createMetrics({ service: "inventory", group: "default", nowMs: () => now });
    const inv = metrics.inventory();
    inv.stockLeft("sale-a", 5);
    inv.stockLeft("sale-b", 7);
    inv.stockLeft("sale-a", 4);
    let text = await metrics.registry.metrics();
    expect(sample(text, "seckill_stock_left", { sale_id: "sale-a" })).toBe(4);
    expect(sample(text, "seckill_stock_left", { sale_id: "sale-b" })).toBe(7);

    inv.saleEnded("sale-b");
    now += STOCK_IDLE_MS / 2;
    inv.stockLeft("sale-c", 1);
    text = await metrics.registry.metrics();
    expect(sample(text, "seckill_stock_left", { sale_id: "sale-b" })).toBeUndefined();
    expect(sample(text, "seckill_stock_left", { sale_id: "sale-a" })).toBe(4);

    now += STOCK_IDLE_MS / 2 + 1;
    text = await metrics.registry.metrics();
    expect(sample(text, "seckill_stock_left", { sale_id: "sale-a" })).toBeUndefined();
    expect(sample(text, "seckill_stock_left", { sale_id: "sale-c" })).toBe(1);
  });

  it("reads an observed gauge when scraped", async () => {
    const metrics = createMetrics({ service: "order", group: "default" });
    let watchers = 3;
    metrics.observe("order_watchers", "open watches", () => watchers);
    expect(sample(await metrics.registry.metrics(), "seckill_order_watchers")).toBe(3);
    watchers = 0;
    expect(sample(await metrics.registry.metrics(), "seckill_order_watchers")).toBe(0);
  });
});

describe("serveMetrics", () => {
  it("answers GET /metrics in the Prometheus text format on the port the OS chose, 404 elsewhere, 405 for other methods", async () => {
    const metrics = createMetrics({ service: "gateway", group: "default" });
    metrics.gateway().tokenIssued();
    const endpoint = await serve(metrics);
    expect(endpoint.address).toMatch(/^127\.0\.0\.1:[1-9]\d*$/);

    const ok = await fetch(`http://${endpoint.address}/metrics`);
    expect(ok.status).toBe(200);
    expect(ok.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(sample(await ok.text(), "seckill_tokens_issued_total", { service: "gateway" })).toBe(1);

    for (const path of ["/", "/metricsx", "/metrics/extra", "/health"]) {
      const response = await fetch(`http://${endpoint.address}${path}`);
      expect(response.status, path).toBe(404);
      await response.text();
    }
    const post = await fetch(`http://${endpoint.address}/metrics`, { method: "POST" });
    expect(post.status).toBe(405);
    await post.text();
  });

  it("lets two endpoints run in one process and frees the port on close", async () => {
    const a = await serve(createMetrics({ service: "inventory", group: "default" }));
    const order = createMetrics({ service: "order", group: "default" });
    order.orders().transitioned("paid");
    const b = await serve(order);
    expect(a.address).not.toBe(b.address);
    expect(await (await fetch(`http://${b.address}/metrics`)).text()).toContain('service="order"');
    await a.close();
    await expect(fetch(`http://${a.address}/metrics`)).rejects.toThrow();
  });

  it("refuses to start on an address in use, naming it", async () => {
    const a = await serve(createMetrics({ service: "inventory", group: "default" }));
    await expect(serveMetrics(createMetrics({ service: "order", group: "default" }).registry, a.address, quietLogger())).rejects.toThrow(
      new RegExp(`cannot serve metrics on ${a.address}`),
    );
  });
});

describe("the gRPC server's call metrics", () => {
  async function start(implementation: Pick<InventoryServiceServer, "getStock">, maxInFlight = 16) {
    const metrics = createMetrics({ service: "inventory", group: "default" });
    const server: RunningGrpcServer = await startGrpcServer({
      address: "127.0.0.1:0",
      services: [{ name: "seckill.v1.InventoryService", definition: InventoryServiceService, implementation }],
      maxMessageBytes: 1 << 20,
      maxInFlight,
      log: quietLogger(),
      metrics: metrics.grpc,
    });
    server.setServing(true);
    const address = `127.0.0.1:${server.port}`;
    const client = new InventoryServiceClient(address, credentials.createInsecure());
    cleanups.push(() => server.shutdown({ drainDelayMs: 0, graceMs: 1000 }));
    cleanups.push(async () => client.close());
    return { metrics, client, address };
  }

  it("counts calls by method and code, times them, and counts refusals by reason", async () => {
    const log = createLogger({}, "error", () => undefined);
    const { metrics, client } = await start({
      getStock: unary(log, "GetStock", async (req) => {
        if (req.saleId === "bad") throw invalid("sale_id", "not a sale id");
        if (req.saleId === "gone") throw refuse("SOLD_OUT", "sold out");
        if (req.saleId === "boom") throw new Error("boom");
        return { saleId: req.saleId, totalStock: 1, stockLeft: 1, warm: true };
      }),
    });
    await callUnary(client, "getStock", { saleId: "ok" });
    await callUnary(client, "getStock", { saleId: "ok" });
    for (const saleId of ["bad", "bad", "gone", "boom"]) await callUnary(client, "getStock", { saleId }).catch(() => undefined);

    const text = await metrics.registry.metrics();
    expect(sample(text, "seckill_grpc_requests_total", { method: "GetStock", code: "OK" })).toBe(2);
    expect(sample(text, "seckill_grpc_requests_total", { method: "GetStock", code: "INVALID_ARGUMENT" })).toBe(2);
    expect(sample(text, "seckill_grpc_requests_total", { method: "GetStock", code: "FAILED_PRECONDITION" })).toBe(1);
    expect(sample(text, "seckill_grpc_requests_total", { method: "GetStock", code: "INTERNAL" })).toBe(1);
    expect(sample(text, "seckill_grpc_request_duration_seconds_count", { method: "GetStock" })).toBe(6);
    expect(sample(text, "seckill_grpc_request_duration_seconds_bucket", { method: "GetStock", le: "+Inf" })).toBe(6);
    expect(sample(text, "seckill_rejections_total", { reason: "INVALID_ARGUMENT" })).toBe(2);
    expect(sample(text, "seckill_rejections_total", { reason: "SOLD_OUT" })).toBe(1);
    // An unexpected error is no refusal.
    expect(sample(text, "seckill_rejections_total", { reason: "INTERNAL" })).toBeUndefined();
  });

  it("counts a load-shed call as an OVERLOADED refusal", async () => {
    let release: (() => void) | undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    const { metrics, client, address } = await start(
      {
        getStock: (call: ServerUnaryCall<GetStockRequest, GetStockResponse>, callback: sendUnaryData<GetStockResponse>) => {
          void held.then(() => callback(null, { saleId: call.request.saleId, totalStock: 0, stockLeft: 0, warm: false }));
        },
      },
      1,
    );
    const first = callUnary(client, "getStock", { saleId: "held" });
    await sleep(100);
    // Another connection: one connection's calls beyond the limit wait in the client (HTTP/2 stream limit).
    const other = new InventoryServiceClient(address, credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 });
    cleanups.push(async () => other.close());
    const shed = await callUnary(other, "getStock", { saleId: "shed" }).then(
      () => undefined,
      (error) => rejectionOf(error),
    );
    release!();
    await first;
    expect(shed).toMatchObject({ code: status.UNAVAILABLE, reason: "OVERLOADED" });
    const text = await metrics.registry.metrics();
    expect(sample(text, "seckill_grpc_requests_total", { method: "GetStock", code: "UNAVAILABLE" })).toBe(1);
    expect(sample(text, "seckill_grpc_requests_total", { method: "GetStock", code: "OK" })).toBe(1);
    expect(sample(text, "seckill_rejections_total", { reason: "OVERLOADED" })).toBe(1);
  });

  it("logs a failed call with its method and the ids of its request", async () => {
    const lines: string[] = [];
    const log = createLogger({}, "info", (line) => lines.push(line));
    const { client } = await start({
      getStock: unary(log, "GetStock", async () => {
        throw new Error("boom");
      }),
    });
    await callUnary(client, "getStock", { saleId: "01HZX0000000000000000000AB" }).catch(() => undefined);
    const logged = lines.map((line) => JSON.parse(line) as Record<string, unknown>).find((entry) => entry.msg === "unexpected error");
    expect(logged).toMatchObject({ level: "error", method: "GetStock", saleId: "01HZX0000000000000000000AB" });
  });
});
