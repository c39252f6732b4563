// The fault proxy with real sockets: an echo server behind it, a client in front.
import net from "node:net";
import { afterEach, beforeEach, expect, it } from "vitest";
import { eventually } from "../stack/fixtures.js";
import { mulberry32 } from "./prng.js";
import { startTcpProxy, type TcpProxy } from "./tcp-proxy.js";

let echo: net.Server;
let proxy: TcpProxy;
const clients: net.Socket[] = [];

beforeEach(async () => {
  echo = net.createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, "127.0.0.1", () => r()));
  proxy = await startTcpProxy({ target: `127.0.0.1:${(echo.address() as net.AddressInfo).port}`, random: mulberry32(7) });
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await proxy.close();
  await new Promise((r) => echo.close(r));
});

async function connect(): Promise<{ socket: net.Socket; received: () => string; closed: Promise<void> }> {
  const socket = net.connect({ host: "127.0.0.1", port: proxy.port });
  clients.push(socket);
  let text = "";
  socket.on("data", (d) => (text += d.toString()));
  socket.on("error", () => undefined);
  const closed = new Promise<void>((r) => socket.once("close", () => r()));
  await new Promise<void>((r, j) => socket.once("connect", () => r()).once("error", j));
  return { socket, received: () => text, closed };
}

const until = (check: () => boolean) => eventually(check, 5000, "the proxied traffic", 5);

it("forwards both ways, and adds the latency it is told to (never less), keeping the order under jitter", async () => {
  const c = await connect();
  c.socket.write("hello");
  await until(() => c.received() === "hello");
  expect(proxy.connections()).toBe(1);

  proxy.setLatency({ latencyMs: 100, jitterMs: 50 });
  const sentAt = Date.now();
  for (let i = 0; i < 20; i++) {
    c.socket.write(`${i},`);
    await new Promise((r) => setTimeout(r, 2));
  }
  await until(() => c.received().endsWith("19,"));
  // Each direction adds at least 100 ms: the echo is back no sooner than 200 ms after the first write.
  expect(Date.now() - sentAt).toBeGreaterThanOrEqual(200);
  expect(c.received()).toBe(`hello${Array.from({ length: 20 }, (_, i) => `${i},`).join("")}`);

  proxy.heal();
  c.socket.write("!");
  await until(() => c.received().endsWith("!"));
  expect(proxy.forwardedBytes()).toBeGreaterThan(0);
});

it("drops every open connection, and accepts new ones", async () => {
  const [a, b] = [await connect(), await connect()];
  await until(() => proxy.connections() === 2);
  proxy.dropConnections();
  await Promise.all([a.closed, b.closed]);
  expect(proxy.connections()).toBe(0);
  const c = await connect();
  c.socket.write("again");
  await until(() => c.received() === "again");
});

it("blackholes: nothing passes and nothing fails until it ends, then the held bytes flow in order", async () => {
  const c = await connect();
  proxy.blackhole();
  c.socket.write("held-1;");
  c.socket.write("held-2;");
  const late = await connect(); // a new connection hangs the same way
  late.socket.write("late");
  await new Promise((r) => setTimeout(r, 300));
  expect(c.received()).toBe("");
  expect(late.received()).toBe("");
  expect(c.socket.destroyed).toBe(false);

  proxy.heal();
  await until(() => c.received() === "held-1;held-2;" && late.received() === "late");
});

it("ends a timed blackhole by itself", async () => {
  const c = await connect();
  proxy.blackhole(200);
  c.socket.write("x");
  await new Promise((r) => setTimeout(r, 100));
  expect(c.received()).toBe("");
  await until(() => c.received() === "x");
});

it("closes the client's side when nothing answers at the target", async () => {
  const dead = await startTcpProxy({ target: "127.0.0.1:1" });
  try {
    const socket = net.connect({ host: "127.0.0.1", port: dead.port });
    clients.push(socket);
    socket.on("error", () => undefined);
    await new Promise<void>((r) => socket.once("close", () => r()));
    expect(dead.connections()).toBe(0);
  } finally {
    await dead.close();
  }
});
