// Order's inventory channel over several inventory replicas behind one name:
// real inventory servers on 127.0.0.1, .2 and .3 (one port, as pods behind a
// headless Service), a DNS server on loopback whose answer the test changes,
// and the client order uses. Inventory closes connections past a short age,
// so the channel resolves the name again and finds the replica added later.
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";

// grpc-js resolves through the system's resolver unless told otherwise; this
// process has to ask the test's DNS server (the `dns://<server>/` in the
// target), which needs the option before grpc-js loads.
vi.hoisted(() => {
  process.env.GRPC_NODE_USE_ALTERNATIVE_RESOLVER = "true";
});

import { setTimeout as sleep } from "node:timers/promises";
import type { ServerUnaryCall } from "@grpc/grpc-js";
import { InventoryServiceService, Reason, ReserveResult, type ReserveRequest } from "@seckill/sdk";
import { startGrpcServer, unary, type RunningGrpcServer } from "../common/grpc-server.js";
import { readConfig } from "../common/config.js";
import { quietLogger } from "../common/log.js";
import { startInventory, type InventoryApp } from "../inventory/app.js";
import { startDnsServer, type TestDnsServer } from "../../test/support/dns-server.js";
import { sample } from "../../test/support/prometheus.js";
import { eventually, startTestStack, type TestStack } from "../../test/support/stack.js";
import { createInventoryClient, inventoryTarget } from "./inventory-client.js";

const NAME = "inventory.seckill.test";
const CONNECTION_AGE_MS = 1000;

describe("the inventory target", () => {
  it("is a host:port through the DNS resolver, and a URI as it is", () => {
    expect(inventoryTarget("inventory-flash:50051")).toBe("dns:///inventory-flash:50051");
    expect(inventoryTarget("127.0.0.1:50051")).toBe("dns:///127.0.0.1:50051");
    expect(inventoryTarget("ipv4:127.0.0.1:1,127.0.0.2:1")).toBe("ipv4:127.0.0.1:1,127.0.0.2:1");
    expect(inventoryTarget("dns://10.0.0.10/inventory:50051")).toBe("dns://10.0.0.10/inventory:50051");
  });
});

describe("order's channel to inventory", () => {
  let stack: TestStack;
  let dns: TestDnsServer;
  const replicas: InventoryApp[] = [];

  beforeAll(async () => {
    stack = await startTestStack({ GRPC_MAX_CONNECTION_AGE_MS: String(CONNECTION_AGE_MS), GRPC_MAX_CONNECTION_AGE_GRACE_MS: "2000" });
    dns = await startDnsServer();
  });
  afterAll(async () => {
    await Promise.allSettled(replicas.map((replica) => replica.stop()));
    await dns?.close();
    await stack?.stop();
  });

  /** Another inventory replica of the stack's, on the same port at another loopback address. */
  const startReplica = async (host: string) => {
    const replica = await startInventory({ ...stack.config, inventoryAddr: `${host}:${stack.inventory.port}` }, quietLogger());
    replicas.push(replica);
    return replica;
  };
  const reservesServed = async (app: InventoryApp) => sample(await app.metrics!.registry.metrics(), "seckill_grpc_requests_total", { method: "Reserve", code: "OK" }) ?? 0;

  it("sends Reserve calls to every replica the name resolves to, and to one added later within the connection age", async () => {
    const first = stack.inventory;
    const second = await startReplica("127.0.0.2");
    dns.setAddresses(NAME, ["127.0.0.1", "127.0.0.2"]);
    const client = createInventoryClient({
      address: `dns://127.0.0.1:${dns.port}/${NAME}:${first.port}`,
      deadlineMs: 2000,
      maxBatch: 16,
      maxMessageBytes: stack.config.grpcMaxMessageBytes,
      dnsMinIntervalMs: 100,
    });
    const sale = await stack.createSale({ totalStock: 1_000_000, perUserLimit: 1 });

    // Buyers one after another on four lanes, all the while: every call in
    // flight when a connection reaches its age must still be answered.
    const results: ReserveResult[] = [];
    const failures: unknown[] = [];
    let buying = true;
    let bought = 0;
    const lane = async (laneId: number) => {
      while (buying) {
        const n = bought++;
        try {
          results.push(await client.reserve({ saleId: sale.saleId, userId: `u${laneId}-${n}`, requestId: `r${n}`, quantity: 1 }));
        } catch (error) {
          failures.push(error);
        }
      }
    };
    const lanes = [0, 1, 2, 3].map(lane);
    try {
      await eventually(async () => (await reservesServed(first)) > 0 && (await reservesServed(second)) > 0, 10_000, "Reserve calls on both replicas");

      const third = await startReplica("127.0.0.3");
      dns.setAddresses(NAME, ["127.0.0.1", "127.0.0.2", "127.0.0.3"]);
      await eventually(async () => (await reservesServed(third)) > 0, 10 * CONNECTION_AGE_MS, "Reserve calls on the replica added later");
      // Several connection ages more, with calls on the three of them.
      await eventually(async () => (await reservesServed(third)) > 10, 10 * CONNECTION_AGE_MS, "more Reserve calls on the replica added later");
    } finally {
      buying = false;
      await Promise.all(lanes);
      client.close();
    }

    expect(failures).toEqual([]);
    expect(results.length).toBeGreaterThan(0);
    expect(results.every((result) => result.reason === Reason.REASON_UNSPECIFIED && result.reservationId !== "")).toBe(true);
    const served = await Promise.all([first, ...replicas].map(reservesServed));
    expect(served.every((count) => count > 0)).toBe(true);
    expect(dns.lookups(NAME)).toBeGreaterThan(1);
  });
});

describe("a connection past its age", () => {
  /**
   * An InventoryService whose first Reserve is answered only once a second
   * one has arrived, each answered with the client connection it came on.
   */
  async function startHoldingInventory(graceMs: number) {
    const peers: string[] = [];
    let secondArrived: () => void = () => {};
    const second = new Promise<void>((resolve) => {
      secondArrived = resolve;
    });
    const reserve = async (request: ReserveRequest, call: ServerUnaryCall<ReserveRequest, unknown>) => {
      peers.push(call.getPeer());
      if (peers.length === 1) await Promise.race([second, sleep(5000)]);
      else secondArrived();
      return { results: request.items.map(() => ReserveResult.fromPartial({ reservationId: call.getPeer(), quantity: 1 })) };
    };
    const server: RunningGrpcServer = await startGrpcServer({
      address: "127.0.0.1:0",
      services: [{ name: "seckill.v1.InventoryService", definition: InventoryServiceService, implementation: { reserve: unary(quietLogger(), "Reserve", reserve) } as never }],
      maxMessageBytes: 1 << 20,
      maxInFlight: 16,
      log: quietLogger(),
      maxConnectionAge: { ageMs: 200, graceMs },
    });
    server.setServing(true);
    return server;
  }

  it("lets a Reserve in progress finish within the grace, and the next Reserve goes over a new connection", async () => {
    const server = await startHoldingInventory(3000);
    const client = createInventoryClient({ address: `127.0.0.1:${server.port}`, deadlineMs: 4000, maxBatch: 16, maxMessageBytes: 1 << 20 });
    try {
      const held = client.reserve({ saleId: "s", userId: "alice", requestId: "r1", quantity: 1 });
      await sleep(500); // past the connection's age (200 ms ± 10 %): it has been told to go away
      const next = await client.reserve({ saleId: "s", userId: "bob", requestId: "r2", quantity: 1 });
      const first = await held;
      expect(first.quantity).toBe(1);
      expect(next.reservationId).not.toBe(first.reservationId);
    } finally {
      client.close();
      await server.shutdown({ drainDelayMs: 0, graceMs: 0 });
    }
  });

  it("cuts a Reserve in progress without a grace", async () => {
    const server = await startHoldingInventory(0);
    const client = createInventoryClient({ address: `127.0.0.1:${server.port}`, deadlineMs: 4000, maxBatch: 16, maxMessageBytes: 1 << 20 });
    try {
      const held = client.reserve({ saleId: "s", userId: "alice", requestId: "r1", quantity: 1 });
      await expect(held).rejects.toThrow();
    } finally {
      client.close();
      await server.shutdown({ drainDelayMs: 0, graceMs: 0 });
    }
  });
});

describe("the connection age's configuration", () => {
  it("refuses a grace shorter than the call deadline: an aged connection would cut calls still awaited", () => {
    expect(() => readConfig({ GRPC_MAX_CONNECTION_AGE_GRACE_MS: "1000", CALL_DEADLINE_MS: "2000" })).toThrow(
      /GRPC_MAX_CONNECTION_AGE_GRACE_MS=1000: expected at least CALL_DEADLINE_MS/,
    );
    expect(readConfig({ GRPC_MAX_CONNECTION_AGE_GRACE_MS: "2000", CALL_DEADLINE_MS: "2000" }).grpcMaxConnectionAgeGraceMs).toBe(2000);
    expect(readConfig({})).toMatchObject({ grpcMaxConnectionAgeMs: 30_000, grpcMaxConnectionAgeGraceMs: 5000 });
  });
});
