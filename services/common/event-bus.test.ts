// connectNats on a real NATS server reached through a TCP fault proxy: a link
// that dies silently (blackholed: no socket closes, nothing answers) is
// noticed by the client's own pings, and the connection comes back once the
// link does.
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, it } from "vitest";
import { startTcpProxy, type TcpProxy } from "../../tools/chaos/tcp-proxy.js";
import { eventually } from "../../tools/stack/fixtures.js";
import { readConfig } from "./config.js";
import { connectNats, NATS_MAX_PINGS_OUT, NATS_PING_INTERVAL_MS } from "./event-bus.js";

let proxy: TcpProxy;
let nc: NatsConnection;
const seen: string[] = [];
beforeAll(async () => {
  proxy = await startTcpProxy({ target: new URL(readConfig().natsUrl.split(",")[0]).host });
  nc = await connectNats(`nats://${proxy.address}`, "event-bus-test");
  void (async () => {
    for await (const s of nc.status()) seen.push(s.type);
  })();
});
afterAll(async () => {
  proxy?.heal();
  await nc?.close();
  await proxy?.close();
});

const noticedWithinMs = (NATS_MAX_PINGS_OUT + 2) * NATS_PING_INTERVAL_MS;

it("drops a connection whose link went silent after its pings stay unanswered, and reconnects once the link is back", { timeout: noticedWithinMs + 20_000 }, async () => {
  await nc.flush();
  proxy.blackhole();
  await eventually(() => seen.includes("disconnect"), noticedWithinMs, "the dead link to be noticed", 200);
  proxy.heal();
  await eventually(() => seen.includes("reconnect"), 15_000, "the reconnection", 200);
  await nc.flush();
});
