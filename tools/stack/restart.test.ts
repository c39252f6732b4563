// `npm start` keeps running when one of its processes dies, as a cluster
// would: each service killed with -9 in turn is restarted on its port while
// the others stay SERVING, and purchases go on; Envoy, supervised the same
// way, comes back too; Ctrl-C still stops everything, a pending restart
// included; a process that keeps failing at start stops the stack, naming it.
// Real start.ts, real servers, ports of its own (never the default ones).
import { setTimeout as sleep } from "node:timers/promises";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { stringify } from "yaml";
import { AccessServiceClient, OrderServiceClient, OrderStatus, SaleServiceClient, callUnary, purchaseMetadata, userMetadata, type Order } from "@seckill/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildBootstrap } from "../../envoy/src/bootstrap.js";
import { LOCAL_TOPOLOGY, type Topology } from "../../envoy/src/topology.js";
import { readConfig } from "../../services/common/config.js";
import { dropDatabase } from "../../services/common/db.js";
import { envoyForTests } from "../../test/support/envoy.js";
import { spawnService } from "./children.js";
import { envoyProgram } from "./envoy.js";
import { cleanNamespace, eventually, saleRequest } from "./fixtures.js";
import { checkHealth, isListening, waitListening } from "./health.js";
import { freePorts } from "./ports.js";
import { isAlive, stackPorts, startStack, waitForOutput, within, type Started, type StackPorts } from "./start-process.js";
import { Supervisor } from "./supervisor.js";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));

const insecure = grpc.credentials.createInsecure();
const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * Health of each address every 200 ms until stopped: what was not SERVING
 * (NOT_SERVING, or no server: connection refused), how many checks were
 * made, and how many went unanswered within 3 s (a busy machine, not a stopped
 * server: that would refuse the connection).
 */
function watchHealth(addresses: string[]): { stop: () => Promise<{ failures: string[]; checks: number; slow: number }> } {
  const failures: string[] = [];
  let checks = 0;
  let slow = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      await Promise.all(
        addresses.map(async (address) => {
          checks += 1;
          try {
            const status = await checkHealth(address, "", 3000);
            if (status !== "SERVING") failures.push(`${address}: ${status}`);
          } catch (error) {
            if ((error as grpc.ServiceError).code === grpc.status.DEADLINE_EXCEEDED) slow += 1;
            else failures.push(`${address}: ${(error as Error).message}`);
          }
        }),
      );
      await sleep(200);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { failures, checks, slow };
    },
  };
}

const childrenOf = (pid: number): number[] => {
  try {
    return execFileSync("pgrep", ["-P", String(pid)], { encoding: "utf8" })
      .trim()
      .split("\n")
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
};

describe("npm start when a process dies", () => {
  const id = randomBytes(4).toString("hex");
  const base = readConfig();
  const dbUrl = new URL(base.databaseUrl);
  dbUrl.pathname = `/seckill_restart_${id}`;
  const env: Record<string, string> = { SECKILL_NAMESPACE: `r${id}`, DATABASE_URL: dbUrl.toString() };
  const config = readConfig({ ...process.env, ...env });
  const stacks: Started[] = [];
  let stack: Started;
  let ports: StackPorts;
  let saleId: string;
  /** The current pid of each service, from the summary and then from the restart lines. */
  const pids = new Map<string, number>();
  let sales: SaleServiceClient;
  let access: AccessServiceClient;
  const clients = new Map<string, OrderServiceClient>();
  let buyer = 0;

  /** A purchase with a fresh token, retried (same request id) while what it needs answers UNAVAILABLE (or, through a fresh edge, UNAUTHENTICATED). */
  async function purchase(orders: OrderServiceClient, retryOn = [grpc.status.UNAVAILABLE]): Promise<{ order: Order; refused: number }> {
    const userId = `restart-${id}-${++buyer}`;
    const requestId = `req-${userId}`;
    const deadline = Date.now() + 15_000;
    for (let refused = 0; ; refused++) {
      try {
        const { token } = await callUnary(access, "issuePurchaseToken", { saleId, challengeId: "", challengeAnswer: "" }, { metadata: userMetadata(userId) });
        const request = { saleId, quantity: 1, requestId, purchaseToken: "", retry: refused > 0 };
        const { order } = await callUnary(orders, "placeOrder", request, { metadata: purchaseMetadata(userId, saleId, token) });
        return { order: order!, refused };
      } catch (error) {
        if (!retryOn.includes((error as grpc.ServiceError).code) || Date.now() > deadline) throw error;
        await sleep(250);
      }
    }
  }

  beforeAll(async () => {
    ports = await stackPorts();
    stack = startStack({ ...env, ...ports.env });
    stacks.push(stack);
    const summary = (await waitForOutput(stack, /Seckill Mesh is up[\s\S]*Press Ctrl-C to stop/, 90_000))[0];
    for (const name of ["inventory", "order", "inventory-flash", "order-flash", "order-writer", "gateway"]) {
      pids.set(name, Number(summary.match(new RegExp(`^  ${name} +127\\.0\\.0\\.1:\\d+ .*\\(pid (\\d+)\\)$`, "m"))![1]));
    }
    sales = new SaleServiceClient(ports.addrs.inventory, insecure);
    access = new AccessServiceClient(ports.addrs.gateway, insecure);
    for (const address of [ports.addrs.order, ports.addrs.flashOrder]) clients.set(address, new OrderServiceClient(address, insecure));
    const { sale } = await callUnary(sales, "createSale", saleRequest({ totalStock: 1000 }));
    saleId = sale!.saleId;
  }, 120_000);

  afterAll(async () => {
    sales?.close();
    access?.close();
    for (const client of clients.values()) client.close();
    for (const s of stacks) {
      if (s.child.exitCode === null && s.child.signalCode === null) {
        s.child.kill("SIGTERM");
        await within(s.exit, 30_000, "stack exit").catch(() => s.child.kill("SIGKILL"));
      }
    }
    await dropDatabase(config.databaseAdminUrl, dbUrl.pathname.slice(1));
    await cleanNamespace(config);
  }, 60_000);

  it("restarts each service killed with -9 on its port, the others staying SERVING, and purchases go on", { timeout: 180_000 }, async () => {
    const { addrs } = ports;
    const services = [
      { name: "order-writer", address: addrs.writer, orders: addrs.order },
      { name: "order-flash", address: addrs.flashOrder, orders: addrs.flashOrder },
      { name: "inventory-flash", address: addrs.flashInventory, orders: addrs.flashOrder },
      { name: "gateway", address: addrs.gateway, orders: addrs.order },
      { name: "inventory", address: addrs.inventory, orders: addrs.order },
      { name: "order", address: addrs.order, orders: addrs.order },
    ];
    expect((await purchase(clients.get(addrs.flashOrder)!)).order.saleId).toBe(saleId);

    for (const { name, address, orders } of services) {
      const others = services.filter((s) => s.name !== name);
      const from = stack.output().length;
      const health = watchHealth(others.map((s) => s.address));
      const killedAt = Date.now();
      process.kill(pids.get(name)!, "SIGKILL");

      await waitForOutput(stack, new RegExp(`^\\[stack\\] ${name} exited \\(signal SIGKILL\\); restarting in 0\\.5 s \\(restart 1\\)$`, "m"), 10_000, from);
      const back = await waitForOutput(stack, new RegExp(`^\\[stack\\] ${name} is SERVING on ${escapeRegExp(address)} again \\(pid (\\d+), restart 1\\)$`, "m"), 30_000, from);
      const downMs = Date.now() - killedAt;
      const { failures, checks, slow } = await health.stop();
      expect(failures, `the others while ${name} was down`).toEqual([]);
      expect(checks - slow).toBeGreaterThan(others.length);

      const pid = Number(back[1]);
      expect(pid).not.toBe(pids.get(name));
      pids.set(name, pid);
      expect(await checkHealth(address)).toBe("SERVING");
      for (const other of others) expect(isAlive(pids.get(other.name)!), `${other.name} still running`).toBe(true);

      const client = clients.get(orders)!;
      const { order, refused } = await purchase(client);
      expect(order).toMatchObject({ saleId, quantity: 1 });
      if (name === "order-writer") {
        // The new writer writes the orders placed after it came back.
        await eventually(
          async () =>
            (await callUnary(client, "getOrder", { orderId: order.orderId }, { metadata: userMetadata(order.userId) })).order!.status === OrderStatus.ORDER_STATUS_CREATED,
          15_000,
          "the order placed after the writer came back to be CREATED",
          200,
        );
      }
      console.log(
        `${name}: SERVING again ${downMs} ms after kill -9 (the others: ${checks - slow} checks SERVING, ${slow} unanswered in 3 s); the purchase after it was refused ${refused} time(s) (UNAVAILABLE) first`,
      );
    }

    const out = stack.output();
    expect(out.match(/restarting in/g)).toHaveLength(services.length); // only the killed ones, once each
    expect(out).not.toMatch(/keeps failing at start|stopping the stack/);
  });

  it("runs Envoy the same way: killed with -9 (the program, then its wrapper), it listens again on its port and purchases through it go on", { timeout: 90_000 }, async (ctx) => {
    const bin = envoyForTests("the edge restart test");
    if (!bin) return ctx.skip();
    const { addrs, jwksPort } = ports;
    const port = (address: string) => ({ host: "127.0.0.1", port: Number(address.split(":")[1]) });
    const [listenPort, adminPort] = await freePorts(2);
    const listener = `127.0.0.1:${listenPort}`;
    // npm start's edge (envoy.local.yaml) in front of this stack's ports.
    const topology: Topology = {
      ...LOCAL_TOPOLOGY,
      protoDescriptor: join(REPO_ROOT, "envoy/seckill.pb"),
      listener: port(listener),
      admin: { host: "127.0.0.1", port: adminPort },
      clusters: {
        inventory_default: port(addrs.inventory),
        order_default: port(addrs.order),
        gateway: port(addrs.gateway),
        inventory_flash: port(addrs.flashInventory),
        order_flash: port(addrs.flashOrder),
        gateway_jwks: { host: "127.0.0.1", port: jwksPort },
      },
    };
    const dir = mkdtempSync(join(tmpdir(), "seckill-restart-edge-"));
    const file = join(dir, "envoy.yaml");
    writeFileSync(file, stringify(buildBootstrap(topology)));
    const logs: string[] = [];
    const envoy = new Supervisor({
      name: "envoy",
      readyAs: `listening on ${listener}`,
      spawn: () => spawnService("envoy", envoyProgram(bin, file), { cwd: REPO_ROOT, env: process.env }),
      ready: (wanted) => waitListening(listener, wanted),
      log: (line) => logs.push(line),
      giveUp: (message) => logs.push(`gave up: ${message}`),
    }).start();
    const edge = new OrderServiceClient(listener, insecure);
    try {
      await eventually(() => envoy.wasReady, 20_000, "envoy to listen");
      // jwt_authn fetches the gateway's keys after start (async_fetch): a first purchase may be UNAUTHENTICATED.
      const viaEdge = () => purchase(edge, [grpc.status.UNAVAILABLE, grpc.status.UNAUTHENTICATED]);
      expect((await viaEdge()).order.saleId).toBe(saleId);

      for (const [restart, target] of [
        [1, "the program"],
        [2, "its wrapper"],
      ] as const) {
        const wrapper = envoy.pid;
        const [program] = childrenOf(wrapper);
        const health = watchHealth(Object.values(addrs));
        process.kill(target === "the program" ? program : wrapper, "SIGKILL");
        await eventually(
          () => logs.some((l) => l.startsWith(`envoy is listening on ${listener} again (pid ${envoy.pid}, restart ${restart})`)),
          20_000,
          `envoy to come back after ${target} was killed`,
        );
        expect(logs.find((l) => l.includes(`(restart ${restart})`) && l.includes("restarting in"))).toMatch(
          new RegExp(`^envoy exited \\(signal SIGKILL\\); restarting in ${restart === 1 ? "0\\.5" : "1"} s \\(restart ${restart}\\)`),
        );
        expect(isAlive(program)).toBe(false);
        expect(envoy.pid).not.toBe(wrapper);
        expect((await health.stop()).failures, "the services while envoy was down").toEqual([]);
        const { order, refused } = await viaEdge();
        expect(order.saleId).toBe(saleId);
        console.log(`envoy (${target} killed): the purchase through it after it came back was refused ${refused} time(s) first`);
      }
      expect(logs.filter((l) => l.startsWith("gave up"))).toEqual([]);
    } finally {
      edge.close();
      const program = childrenOf(envoy.pid)[0];
      await envoy.stop(5000);
      if (program) expect(isAlive(program)).toBe(false);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("Ctrl-C stops everything, a restart waiting for its delay included: it never happens", { timeout: 60_000 }, async () => {
    const from = stack.output().length;
    process.kill(pids.get("order-writer")!, "SIGKILL");
    // Its second restart: 1 s away.
    await waitForOutput(stack, /^\[stack\] order-writer exited \(signal SIGKILL\); restarting in 1 s \(restart 2\)$/m, 10_000, from);
    const beforeStop = stack.output().length;
    stack.child.kill("SIGINT");
    expect(await within(stack.exit, 30_000, "exit after SIGINT")).toBe(0);
    const after = stack.output().slice(beforeStop);
    expect(after).toMatch(/SIGINT: stopping/);
    expect(after).not.toMatch(/^\[order-writer\]|restarting in|again/m);
    expect([...pids.values()].filter(isAlive)).toEqual([]);
    for (const address of Object.values(ports.addrs)) expect(await isListening(address)).toBe(false);
  });

  it("stops the stack with exit code 1, naming the process and its last lines, when one keeps failing at start", { timeout: 120_000 }, async () => {
    const { addrs, env: own } = await stackPorts();
    // Only the flash-sale group's inventory gets this ORDER_ADDR (its order service sets its own).
    const failing = startStack({ ...env, ...own, FLASH_GROUP_ORDER_ADDR: "nowhere" });
    stacks.push(failing);
    expect(await within(failing.exit, 90_000, "exit after giving up")).toBe(1);
    const out = failing.output();
    expect(out.match(/^\[stack\] inventory-flash exited \(exit code 2\); restarting in/gm)).toHaveLength(4);
    expect(out).toMatch(
      new RegExp(
        `^\\[stack\\] inventory-flash keeps failing at start: 5 runs in a row ended before it was SERVING on ${escapeRegExp(addrs.flashInventory)} \\(the last: exit code 2\\); giving up\\. Its last lines:\\n(\\[stack\\]     .*\\n)*\\[stack\\]     .*ORDER_ADDR="nowhere"`,
        "m",
      ),
    );
    expect(out).toMatch(/^\[stack\] stopping the stack$/m);
    expect(out).not.toMatch(/Press Ctrl-C to stop/);
    for (const address of Object.values(addrs)) expect(await isListening(address)).toBe(false);
  });
});
