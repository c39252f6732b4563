// Metrics of every service on real servers: after a small sale, each
// process's GET /metrics reports what happened (reservations, refusals by
// reason, writer batches, order transitions, watchers, the gateway's checks
// and tokens), and every metric the Grafana dashboard queries exists.
import { sample } from "./support/prometheus.js";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { credentials, status, type ServiceError } from "@grpc/grpc-js";
import { jetstream } from "@nats-io/jetstream";
import { AccessServiceClient, callUnary, OrderStatus, rejectionOf, userMetadata } from "@seckill/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rateLimitServiceClient } from "../gateway/ratelimit/envoy-protos.js";
import { connectNats, eventNames } from "../services/common/event-bus.js";
import type { ServingApp } from "../services/common/serve.js";
import { shouldRateLimit, user } from "./support/rate-limit.js";
import { eventually, refusal, startTestStack, type TestStack } from "./support/stack.js";

const DASHBOARD = fileURLToPath(new URL("../k8s/dashboards/seckill-live-sale.json", import.meta.url));

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack({ METRICS_ADDR: "127.0.0.1:0", PURCHASE_TOKEN_REQUIRED: "false" }, { gateway: true });
}, 60_000);
afterAll(async () => {
  await stack?.stop();
});

/** The apps of the stack by the service name their metrics carry. */
const apps = (): Record<string, ServingApp> => ({ inventory: stack.inventory, order: stack.order, "order-writer": stack.writer, gateway: stack.gateway! });

async function scrape(app: ServingApp): Promise<string> {
  const response = await fetch(`http://${app.metricsAddress}/metrics`);
  expect(response.status).toBe(200);
  return response.text();
}

const place = (saleId: string, userId: string, requestId: string) =>
  callUnary(stack.orders, "placeOrder", { saleId, quantity: 1, requestId, purchaseToken: "", retry: false }, { metadata: userMetadata(userId) });

describe("GET /metrics", () => {
  it("is served by every service on its own port, labelled with the service and its group, and nothing else is", async () => {
    const addresses = new Set<string>();
    for (const [service, app] of Object.entries(apps())) {
      expect(app.metricsAddress, service).toMatch(/^127\.0\.0\.1:[1-9]\d*$/);
      addresses.add(app.metricsAddress!);
      const text = await scrape(app);
      expect(sample(text, "seckill_process_resident_memory_bytes", { service, group: "default" }), service).toBeGreaterThan(0);
      for (const path of ["/", "/metric", "/metrics/", "/debug"]) {
        const response = await fetch(`http://${app.metricsAddress}${path}`);
        expect(response.status, `${service} ${path}`).toBe(404);
        await response.text();
      }
    }
    expect(addresses.size).toBe(4);
  });

  it("counts a sale: reservations, refusals by reason, stock, writer batches and order transitions", async () => {
    const stock = 3;
    const buyers = 8;
    const sale = await stack.createSale({ totalStock: stock });
    const outcomes = await Promise.all(
      Array.from({ length: buyers }, (_, i) =>
        place(sale.saleId, `buyer-${i}`, `req-${i}`).then(
          (res) => ({ ok: true as const, orderId: res.order!.orderId, userId: `buyer-${i}` }),
          (error: ServiceError) => ({ ok: false as const, reason: rejectionOf(error).reason }),
        ),
      ),
    );
    const won = outcomes.filter((o) => o.ok);
    expect(won).toHaveLength(stock);
    expect(outcomes.filter((o) => !o.ok).map((o) => !o.ok && o.reason)).toEqual(Array(buyers - stock).fill("SOLD_OUT"));
    // Bad input: refused before any work, counted under INVALID_ARGUMENT.
    expect(await refusal(place("not-a-sale", "buyer-x", "req-x"))).toMatchObject({ code: status.INVALID_ARGUMENT });
    // A buyer after the sell-out is answered before grpc-js (the admission gate), and counted the same way.
    expect(await refusal(place(sale.saleId, "buyer-late", "req-late"))).toMatchObject({ code: status.FAILED_PRECONDITION, reason: "SOLD_OUT" });

    const inventory = await scrape(stack.inventory);
    expect(sample(inventory, "seckill_reservations_total", { outcome: "OK", service: "inventory" })).toBe(stock);
    expect(sample(inventory, "seckill_stock_left", { sale_id: sale.saleId })).toBe(0);
    expect(sample(inventory, "seckill_grpc_requests_total", { method: "CreateSale", code: "OK" })).toBeGreaterThanOrEqual(1);
    expect(sample(inventory, "seckill_redis_lost_sales")).toBe(0);

    const order = await scrape(stack.order);
    expect(sample(order, "seckill_grpc_requests_total", { method: "PlaceOrder", code: "OK", service: "order" })).toBe(stock);
    expect(sample(order, "seckill_grpc_requests_total", { method: "PlaceOrder", code: "FAILED_PRECONDITION" })).toBe(buyers - stock + 1);
    expect(sample(order, "seckill_grpc_requests_total", { method: "PlaceOrder", code: "INVALID_ARGUMENT" })).toBe(1);
    expect(sample(order, "seckill_rejections_total", { reason: "SOLD_OUT" })).toBe(buyers - stock + 1);
    expect(sample(order, "seckill_rejections_total", { reason: "INVALID_ARGUMENT" })).toBe(1);
    expect(sample(order, "seckill_grpc_request_duration_seconds_count", { method: "PlaceOrder" })).toBe(buyers + 2);

    // The writer stores the winners' orders.
    await eventually(async () => sample(await scrape(stack.writer), "seckill_orders_total", { transition: "created" }) === stock, 15_000, "3 orders created");
    const writer = await scrape(stack.writer);
    expect(sample(writer, "seckill_writer_batch_size_count")).toBeGreaterThan(0);
    expect(sample(writer, "seckill_writer_batch_size_sum")).toBe(stock);
    expect(sample(writer, "seckill_writer_commit_duration_seconds_count")).toBeGreaterThan(0);
    expect(sample(writer, "seckill_queue_lag_messages", { service: "order-writer" })).toBeGreaterThanOrEqual(0);
    expect(sample(writer, "seckill_writer_dead_letters_total")).toBeUndefined();

    // One order paid, one cancelled: counted by the order service.
    const [paid, cancelled] = won as { orderId: string; userId: string }[];
    await callUnary(stack.orders, "payOrder", { orderId: paid.orderId, paymentReference: "pay-1", requestId: "pay-req-1" }, { metadata: userMetadata(paid.userId) });
    await callUnary(stack.orders, "cancelOrder", { orderId: cancelled.orderId, requestId: "cancel-req-1" }, { metadata: userMetadata(cancelled.userId) });
    const after = await scrape(stack.order);
    expect(sample(after, "seckill_orders_total", { transition: "paid" })).toBe(1);
    expect(sample(after, "seckill_orders_total", { transition: "cancelled" })).toBe(1);
  });

  it("counts a message the writer cannot decode as an undecodable dead letter", async () => {
    const sale = await stack.createSale({ totalStock: 1 });
    const nc = await connectNats(stack.config.natsUrl, "metrics-test");
    try {
      const garbage = Buffer.concat([Buffer.from([0x0f]), randomBytes(16)]);
      await jetstream(nc).publish(eventNames(stack.config.namespace).reservationSubject(sale.saleId), garbage, { msgID: `junk-${randomBytes(6).toString("hex")}`, timeout: 5000 });
    } finally {
      await nc.close();
    }
    await eventually(async () => sample(await scrape(stack.writer), "seckill_writer_dead_letters_total", { reason: "undecodable" }) === 1, 15_000, "the dead letter to be counted");
  });

  it("follows the open order watches and counts a stream when it ends", async () => {
    const sale = await stack.createSale({ totalStock: 1 });
    const { order } = await place(sale.saleId, "watcher", "req-watch");
    const call = stack.orders.watchOrder({ orderId: order!.orderId, lastStatus: OrderStatus.ORDER_STATUS_UNSPECIFIED }, userMetadata("watcher"));
    call.on("error", () => undefined);
    await new Promise((resolve) => call.once("data", resolve));
    expect(sample(await scrape(stack.order), "seckill_order_watchers")).toBe(1);
    call.cancel();
    await eventually(
      async () => {
        const text = await scrape(stack.order);
        return sample(text, "seckill_order_watchers") === 0 && sample(text, "seckill_grpc_requests_total", { method: "WatchOrder", code: "CANCELLED" }) === 1;
      },
      10_000,
      "the watch to be counted as cancelled",
    );
  });

  it("counts the gateway's rate-limit checks by result and the purchase tokens it issues", async () => {
    const RateLimitService = rateLimitServiceClient();
    const limits = new RateLimitService(stack.gateway!.address, credentials.createInsecure());
    const access = new AccessServiceClient(stack.gateway!.address, credentials.createInsecure());
    try {
      expect((await shouldRateLimit(limits, { domain: "seckill", descriptors: [user("calm-user")], hits_addend: 1 })).overall_code).toBe("OK");
      // More hits at once than the per-user limit of 20 a second.
      expect((await shouldRateLimit(limits, { domain: "seckill", descriptors: [user("flooding-user")], hits_addend: 50 })).overall_code).toBe("OVER_LIMIT");
      const sale = await stack.createSale({ totalStock: 5 });
      await callUnary(access, "issuePurchaseToken", { saleId: sale.saleId, challengeId: "", challengeAnswer: "" }, { metadata: userMetadata("token-user") });
      const text = await scrape(stack.gateway!);
      expect(sample(text, "seckill_ratelimit_checks_total", { result: "OK", service: "gateway" })).toBe(1);
      expect(sample(text, "seckill_ratelimit_checks_total", { result: "OVER_LIMIT" })).toBe(1);
      expect(sample(text, "seckill_tokens_issued_total")).toBe(1);
      expect(sample(text, "seckill_grpc_requests_total", { method: "IssuePurchaseToken", code: "OK" })).toBe(1);
    } finally {
      limits.close();
      access.close();
    }
  });
});

describe("the Grafana dashboard", () => {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, "utf8")) as {
    schemaVersion: number;
    panels: { type: string; title: string; datasource?: { uid: string }; targets?: { expr: string }[] }[];
    templating: { list: { name: string; type: string; query?: unknown }[] };
  };

  it("uses the Prometheus data source variable and offers a sale_id variable", () => {
    expect(dashboard.schemaVersion).toBe(39);
    const variables = Object.fromEntries(dashboard.templating.list.map((v) => [v.name, v]));
    expect(variables.DS_PROMETHEUS).toMatchObject({ type: "datasource", query: "prometheus" });
    expect(variables.sale_id).toMatchObject({ type: "query" });
    expect(JSON.stringify(variables.sale_id.query)).toContain("seckill_stock_left");
    for (const panel of dashboard.panels.filter((p) => p.type !== "row")) {
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's datasource variable, written as Grafana reads it
      expect(panel.datasource?.uid, panel.title).toBe("${DS_PROMETHEUS}");
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
    }
    expect(dashboard.panels.some((p) => p.targets?.some((t) => t.expr.includes('sale_id=~"$sale_id"')))).toBe(true);
  });

  it("queries only metrics that the services register", async () => {
    const registered = new Map<string, string>();
    for (const app of Object.values(apps())) {
      for (const metric of await app.metrics!.registry.getMetricsAsJSON()) registered.set(metric.name, String(metric.type));
    }
    const queries = [...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)), ...dashboard.templating.list.map((v) => JSON.stringify(v.query ?? ""))];
    const used = new Set(queries.flatMap((q) => q.match(/\bseckill_[a-z0-9_]+/g) ?? []));
    expect(used.size).toBeGreaterThan(12);
    for (const name of used) {
      const histogram = /^(.*)_(bucket|sum|count)$/.exec(name);
      const known = registered.has(name) || (histogram !== null && registered.get(histogram[1]) === "histogram");
      expect(known, `${name} is not registered by any service`).toBe(true);
    }
  });
});
