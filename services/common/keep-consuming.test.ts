// keepConsuming on a real NATS server reached through a TCP fault proxy: a
// consumption whose pull requests stop being answered (the link blackholed for
// longer than the heartbeats it may miss) is started afresh, and every message
// published meanwhile is received once the link is back (those the old
// consumption was sent come again after AckWait).
import { randomBytes } from "node:crypto";
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startTcpProxy, type TcpProxy } from "../../tools/chaos/tcp-proxy.js";
import { eventually } from "../../tools/stack/fixtures.js";
import { readConfig } from "./config.js";
import { connectNats } from "./event-bus.js";
import { HEARTBEAT_MS, keepConsuming, RESTART_AFTER_MISSED } from "./keep-consuming.js";
import { createLogger } from "./log.js";

const stream = `keep_consuming_${randomBytes(4).toString("hex")}`;
let proxy: TcpProxy;
let direct: NatsConnection;
let proxied: NatsConnection;
beforeAll(async () => {
  const url = new URL(readConfig().natsUrl.split(",")[0]);
  proxy = await startTcpProxy({ target: url.host });
  direct = await connectNats(url.toString(), "keep-consuming-test");
  proxied = await connectNats(`nats://${proxy.address}`, "keep-consuming-test-proxied");
  const jsm = await jetstreamManager(direct);
  await jsm.streams.add({ name: stream, subjects: [`${stream}.>`] });
  await jsm.consumers.add(stream, { durable_name: "c", ack_policy: AckPolicy.Explicit, ack_wait: 2_000_000_000 });
});
afterAll(async () => {
  await (await jetstreamManager(direct)).streams.delete(stream).catch(() => undefined);
  await proxied?.close();
  await direct?.close();
  await proxy?.close();
});

it("starts a fresh consumption when heartbeats stay missing, and receives what was published meanwhile", { timeout: 30_000 }, async () => {
  const received = new Set<string>();
  const consumer = await jetstream(proxied).consumers.get(stream, "c");
  const consumption = await keepConsuming({
    consumer,
    name: "test",
    maxMessages: 10,
    log: createLogger({}, "error"),
    callback: (msg) => {
      received.add(msg.string());
      msg.ack();
    },
  });
  try {
    const js = jetstream(direct);
    await js.publish(`${stream}.a`, "before");
    await eventually(() => received.has("before"), 10_000, "the first message");
    expect(consumption.starts).toBe(1);

    proxy.blackhole();
    for (let i = 0; i < 5; i++) await js.publish(`${stream}.a`, `during-${i}`);
    await new Promise((r) => setTimeout(r, (RESTART_AFTER_MISSED + 1.5) * HEARTBEAT_MS));
    expect(consumption.starts).toBe(2);
    proxy.heal();

    await js.publish(`${stream}.a`, "after");
    await eventually(() => received.size === 7, 15_000, "every message");
  } finally {
    proxy.heal();
    await consumption.stop();
  }
});
