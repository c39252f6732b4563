// The bench's HTTP/2 client against servers on 127.0.0.1: node:http2
// (nghttp2, which Huffman-codes and indexes response headers the way the
// grpc-js servers under test do) doing each thing a server may do, a scripted
// server for what nghttp2 does not send (CONTINUATION, padding, protocol
// errors), and the bench's no-op grpc-js server. Counts and contents only,
// never timings.
import { createHash } from "node:crypto";
import http2 from "node:http2";
import net, { type AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PlaceOrderRequest } from "@seckill/sdk";
import { readConfig } from "../services/common/config.js";
import { freePort } from "../tools/stack/ports.js";
import { quietLogger } from "../services/common/log.js";
import { connect, type ClientStream, type H2Connection, type StreamEnd } from "./h2-wire.js";
import { encodeHeaders, type HeaderField } from "./hpack.js";
import { startNoopServer } from "./noop-server.js";

const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM, NGHTTP2_ENHANCE_YOUR_CALM } = http2.constants;

interface Answer {
  blocks: { fields: Record<string, string>; endStream: boolean }[];
  end: StreamEnd;
}

interface Call {
  stream: ClientStream;
  answer: Promise<Answer>;
  /** How many times the stream's onEnd was called. */
  ends(): number;
}

function call(conn: H2Connection, path: string, extra: HeaderField[] = [], body = Buffer.alloc(0), authority = "127.0.0.1"): Call {
  const block = encodeHeaders([
    [":method", "POST"],
    [":scheme", "http"],
    [":path", path],
    [":authority", authority],
    ["content-type", "application/grpc"],
    ["te", "trailers"],
    ...extra,
  ]);
  const blocks: Answer["blocks"] = [];
  let resolve!: (answer: Answer) => void;
  const answer = new Promise<Answer>((r) => (resolve = r));
  let ends = 0;
  const stream = conn.request([block], body, {
    onHeaders: (fields, endStream) => blocks.push({ fields: Object.fromEntries(fields), endStream }),
    onEnd: (end) => {
      ends++;
      resolve({ blocks, end });
    },
  });
  return { stream, answer, ends: () => ends };
}

/** A node:http2 server; every session it accepts is destroyed when the test ends. */
async function h2Server(onStream: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void, settings: http2.Settings = {}) {
  const server = http2.createServer({ settings });
  const sessions = new Set<http2.ServerHttp2Session>();
  const sockets = new Set<net.Socket>();
  server.on("connection", (socket: net.Socket) => sockets.add(socket));
  server.on("session", (session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
    session.on("error", () => {});
  });
  server.on("stream", (stream, headers) => {
    stream.on("error", () => {});
    onStream(stream, headers);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  cleanups.push(async () => {
    for (const session of sessions) session.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port, sessions, sockets };
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

/** A connection closed when the test ends; onEnd reasons land in `ends`. */
async function client(port: number) {
  const ends: string[] = [];
  const conn = await connect({ host: "127.0.0.1", port, onEnd: (reason) => ends.push(reason) });
  cleanups.unshift(() => conn.close());
  return { conn, ends };
}

/** Reads a request body to its end. */
function bodyOf(stream: http2.ServerHttp2Stream): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("end", () => resolve(Buffer.concat(chunks)));
  });
}

/** A gRPC-shaped answer: headers, the body, trailers. */
function answer(stream: http2.ServerHttp2Stream, headers: http2.OutgoingHttpHeaders, body: Buffer, trailers: http2.OutgoingHttpHeaders) {
  stream.respond({ ":status": 200, "content-type": "application/grpc", ...headers }, { waitForTrailers: true });
  stream.on("wantTrailers", () => stream.sendTrailers(trailers));
  stream.end(body);
}

describe("against node:http2", () => {
  it("a response with headers, a body and trailers; the request as the server sees it", async () => {
    const { port } = await h2Server(async (stream, headers) => {
      const body = await bodyOf(stream);
      answer(stream, { "x-seen": `${headers[":method"]} ${headers[":path"]} ${headers[":authority"]} ${headers["x-user-id"]} ${body.toString()}` }, Buffer.from("reply"), {
        "grpc-status": "0",
        "grpc-message": "fine",
      });
    });
    const { conn } = await client(port);
    const { answer: result } = call(conn, "/pkg.Service/Method", [["x-user-id", "u-1"]], Buffer.from("hello"), "example:1234");
    expect(await result).toEqual({
      blocks: [
        { fields: expect.objectContaining({ ":status": "200", "x-seen": "POST /pkg.Service/Method example:1234 u-1 hello" }), endStream: false },
        { fields: { "grpc-status": "0", "grpc-message": "fine" }, endStream: true },
      ],
      end: { kind: "complete" },
    });
  });

  it("a trailers-only response: one header block that ends the stream", async () => {
    const { port } = await h2Server((stream) =>
      stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "5", "grpc-message": "no such thing" }, { endStream: true }),
    );
    const { conn } = await client(port);
    const result = await call(conn, "/x").answer;
    expect(result.blocks).toEqual([{ fields: expect.objectContaining({ ":status": "200", "grpc-status": "5", "grpc-message": "no such thing" }), endStream: true }]);
    expect(result.end).toEqual({ kind: "complete" });
  });

  it("decodes Huffman-coded and table-indexed headers over many calls while the table evicts", async () => {
    // Per call: an echo (new each time), a constant (indexed after the first
    // call) and one of 60 fields of ~150 octets (far more than the 4096-octet
    // table holds, so entries keep being evicted and re-added).
    const { port } = await h2Server((stream, headers) => {
      const n = Number(headers["x-n"]);
      answer(
        stream,
        {
          "x-echo": `echo-${headers["x-user-id"]}`,
          "x-constant": "a fairly long constant value, the same every time",
          [`x-rotating-${n % 60}`]: `value ${n % 60} `.padEnd(150, "z"),
        },
        Buffer.alloc(0),
        { "grpc-status": String(n % 17), "grpc-message": `message number ${n}` },
      );
    });
    const { conn } = await client(port);
    for (let batch = 0; batch < 10; batch++) {
      const calls = Array.from({ length: 40 }, (_, i) => {
        const n = batch * 40 + i;
        return {
          n,
          result: call(conn, "/x", [
            ["x-user-id", `user-${n}`],
            ["x-n", String(n)],
          ]).answer,
        };
      });
      for (const { n, result } of calls) {
        const { blocks, end } = await result;
        expect(end).toEqual({ kind: "complete" });
        expect(blocks[0].fields).toMatchObject({
          "x-echo": `echo-user-${n}`,
          "x-constant": "a fairly long constant value, the same every time",
          [`x-rotating-${n % 60}`]: `value ${n % 60} `.padEnd(150, "z"),
        });
        expect(blocks[1]).toEqual({ fields: { "grpc-status": String(n % 17), "grpc-message": `message number ${n}` }, endStream: true });
      }
    }
  });

  it("reports a RST_STREAM with its code, and the connection carries on", async () => {
    const { port } = await h2Server((stream, headers) => {
      if (headers[":path"] === "/reset") stream.close(NGHTTP2_REFUSED_STREAM);
      else answer(stream, {}, Buffer.alloc(0), { "grpc-status": "0" });
    });
    const { conn, ends } = await client(port);
    expect((await call(conn, "/reset").answer).end).toEqual({ kind: "reset", code: NGHTTP2_REFUSED_STREAM });
    expect((await call(conn, "/ok").answer).end).toEqual({ kind: "complete" });
    expect(ends).toEqual([]);
  });

  it("GOAWAY: streams above its last stream id fail, those below finish, and no new stream is taken", async () => {
    const held: http2.ServerHttp2Stream[] = [];
    let goAway!: () => void;
    const fourArrived = new Promise<void>((resolve) => (goAway = resolve));
    const { port } = await h2Server((stream) => {
      held.push(stream);
      if (held.length === 4) goAway();
    });
    const { conn, ends } = await client(port);
    const calls = [1, 3, 5, 7].map(() => call(conn, "/x").answer);
    await fourArrived;
    held[0].session!.goaway(NGHTTP2_ENHANCE_YOUR_CALM, 3);
    const failed = await Promise.all([calls[2], calls[3]]);
    expect(failed.map((r) => r.end)).toEqual([
      { kind: "failed", reason: `goaway ${NGHTTP2_ENHANCE_YOUR_CALM}` },
      { kind: "failed", reason: `goaway ${NGHTTP2_ENHANCE_YOUR_CALM}` },
    ]);
    expect(ends).toEqual([`goaway ${NGHTTP2_ENHANCE_YOUR_CALM}`]);
    expect(() => call(conn, "/x")).toThrow(/not taking streams/);
    for (const stream of held.slice(0, 2)) answer(stream, {}, Buffer.alloc(0), { "grpc-status": "0" });
    const finished = await Promise.all([calls[0], calls[1]]);
    expect(finished.map((r) => [r.end, r.blocks.at(-1)?.fields["grpc-status"]])).toEqual([
      [{ kind: "complete" }, "0"],
      [{ kind: "complete" }, "0"],
    ]);
  });

  it("keeps to the server's SETTINGS_MAX_CONCURRENT_STREAMS, queueing the rest in order", async () => {
    let open = 0;
    let mostOpen = 0;
    const order: number[] = [];
    const { port } = await h2Server(
      (stream, headers) => {
        mostOpen = Math.max(mostOpen, ++open);
        order.push(Number(headers["x-n"]));
        setTimeout(() => {
          open--; // before the answer: the client opens the next stream only once it has it
          answer(stream, {}, Buffer.alloc(0), { "grpc-status": "0" });
        }, 2);
      },
      { maxConcurrentStreams: 4 },
    );
    const { conn } = await client(port);
    const results = await Promise.all(Array.from({ length: 50 }, (_, n) => call(conn, "/x", [["x-n", String(n)]]).answer));
    expect(results.map((r) => r.end.kind)).toEqual(Array(50).fill("complete"));
    expect(results.map((r) => r.blocks.at(-1)?.fields["grpc-status"])).toEqual(Array(50).fill("0"));
    expect(mostOpen).toBe(4);
    expect(order).toEqual([...Array(50).keys()]);
  });

  it("keeps to the server's flow-control windows for request bodies larger than them", async () => {
    // A 1000-octet stream window and the default 65,535-octet connection
    // window, against three 200 kB bodies at once.
    const { port } = await h2Server(
      async (stream) => {
        const body = await bodyOf(stream);
        answer(stream, { "x-sha256": createHash("sha256").update(body).digest("hex") }, Buffer.alloc(0), { "grpc-status": "0" });
      },
      { initialWindowSize: 1000 },
    );
    const { conn } = await client(port);
    const bodies = [1, 2, 3].map((seed) => Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * seed) % 251)));
    const results = await Promise.all(bodies.map((body) => call(conn, "/x", [], body).answer));
    for (const [i, result] of results.entries()) {
      expect(result.end).toEqual({ kind: "complete" });
      expect(result.blocks[0].fields["x-sha256"]).toBe(createHash("sha256").update(bodies[i]).digest("hex"));
    }
  });

  it("returns receive-window credit: responses adding up to more than the connection window all arrive", async () => {
    // 24 × 1 MiB over the 16 MiB connection window, four at a time (the
    // server refuses streams once it buffers more than 10 MB).
    const { port } = await h2Server((stream) => answer(stream, {}, Buffer.alloc(1 << 20, 7), { "grpc-status": "0" }));
    const { conn } = await client(port);
    for (let batch = 0; batch < 6; batch++) {
      const results = await Promise.all([1, 2, 3, 4].map(() => call(conn, "/x").answer));
      expect(results.map((r) => [r.end.kind, r.blocks.at(-1)?.fields["grpc-status"]])).toEqual(Array(4).fill(["complete", "0"]));
    }
  }, 30_000);

  it("acknowledges the server's PING", async () => {
    const { port, sessions } = await h2Server(() => {});
    await client(port);
    const [session] = sessions;
    const payload = Buffer.from("8 octets");
    const echoed = await new Promise<Buffer>((resolve, reject) => session.ping(payload, (error, _ms, back) => (error ? reject(error) : resolve(back))));
    expect(echoed).toEqual(payload);
  });

  it("cancel: an open stream is reset with CANCEL, a queued one never reaches the server", async () => {
    const seen: { path: string; stream: http2.ServerHttp2Stream }[] = [];
    const arrivals: (() => void)[] = [];
    const arrived = (n: number) => new Promise<void>((resolve) => (seen.length >= n ? resolve() : arrivals.push(resolve)));
    const { port } = await h2Server(
      (stream, headers) => {
        seen.push({ path: String(headers[":path"]), stream });
        for (const resolve of arrivals.splice(0)) resolve();
      },
      { maxConcurrentStreams: 1 },
    );
    const { conn } = await client(port);
    const open = call(conn, "/held");
    const queued = call(conn, "/queued");
    await arrived(1);
    queued.stream.cancel();
    expect((await queued.answer).end).toEqual({ kind: "cancelled" });
    const rstCode = new Promise<number>((resolve) => seen[0].stream.on("close", () => resolve(seen[0].stream.rstCode)));
    open.stream.cancel();
    open.stream.cancel(); // a no-op once ended
    expect((await open.answer).end).toEqual({ kind: "cancelled" });
    expect(await rstCode).toBe(NGHTTP2_CANCEL);
    expect(open.ends()).toBe(1);
    // The slot is free again, and the queued stream was never sent.
    const after = call(conn, "/after").answer;
    await arrived(2);
    expect(seen.map((s) => s.path)).toEqual(["/held", "/after"]);
    seen[1].stream.respond({ ":status": 200, "grpc-status": "0" }, { endStream: true });
    expect((await after).end).toEqual({ kind: "complete" });
  });

  it("a connection the server drops fails every pending stream, and takes no new one", async () => {
    const held: http2.ServerHttp2Stream[] = [];
    let drop!: () => void;
    const threeArrived = new Promise<void>((resolve) => (drop = resolve));
    const { port, sockets } = await h2Server(
      (stream) => {
        held.push(stream);
        if (held.length === 3) drop();
      },
      { maxConcurrentStreams: 3 },
    );
    const { conn, ends } = await client(port);
    const calls = Array.from({ length: 5 }, () => call(conn, "/x").answer); // two of them queued
    await threeArrived;
    for (const socket of sockets) socket.destroy();
    const results = await Promise.all(calls);
    // "session closed", or a socket error (ECONNRESET) first, as the kernel has it.
    expect(ends).toEqual([expect.stringMatching(/^session (closed|error: .+)$/)]);
    expect(results.map((r) => r.end)).toEqual(Array(5).fill({ kind: "failed", reason: ends[0] }));
    expect(() => call(conn, "/x")).toThrow(/not taking streams/);
  });

  it("a refused connection rejects", async () => {
    const port = await freePort(); // nobody listens there
    await expect(connect({ host: "127.0.0.1", port })).rejects.toThrow(/ECONNREFUSED/);
  });
});

describe("against a scripted server", () => {
  interface Frame {
    type: number;
    flags: number;
    id: number;
    payload: Buffer;
  }
  const frame = (type: number, flags: number, id: number, payload: Buffer = Buffer.alloc(0)) => {
    const header = Buffer.alloc(9);
    header.writeUIntBE(payload.length, 0, 3);
    header.writeUInt8(type, 3);
    header.writeUInt8(flags, 4);
    header.writeUInt32BE(id, 5);
    return Buffer.concat([header, payload]);
  };
  const [DATA, HEADERS, SETTINGS, PING, GOAWAY, CONTINUATION] = [0x0, 0x1, 0x4, 0x6, 0x7, 0x9];
  const [END_STREAM, END_HEADERS, PADDED, PRIORITY] = [0x1, 0x4, 0x8, 0x20];

  /**
   * A TCP server that speaks just enough HTTP/2: its SETTINGS, then `script`
   * once the client's first HEADERS arrives. Returns its port, every frame
   * the client sent, and when the client's connection closed.
   */
  async function scripted(script: Buffer[]) {
    const received: Frame[] = [];
    let closed!: () => void;
    const clientGone = new Promise<void>((resolve) => (closed = resolve));
    const server = net.createServer((socket) => {
      socket.on("error", () => {});
      socket.on("close", closed);
      socket.write(frame(SETTINGS, 0, 0));
      let pending = Buffer.alloc(0);
      let prefaceSeen = false;
      socket.on("data", (chunk: Buffer) => {
        pending = Buffer.concat([pending, chunk]);
        if (!prefaceSeen && pending.length >= 24) {
          pending = pending.subarray(24);
          prefaceSeen = true;
        }
        while (prefaceSeen && pending.length >= 9 && pending.length >= 9 + pending.readUIntBE(0, 3)) {
          const length = pending.readUIntBE(0, 3);
          const f = { type: pending[3], flags: pending[4], id: pending.readUInt32BE(5), payload: pending.subarray(9, 9 + length) };
          pending = pending.subarray(9 + length);
          received.push(f);
          if (f.type === HEADERS) socket.write(Buffer.concat(script));
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    return { port: (server.address() as AddressInfo).port, received, clientGone };
  }

  it("reassembles HEADERS and CONTINUATION frames, padding and priority included", async () => {
    const headers = encodeHeaders([
      [":status", "200"],
      ["content-type", "application/grpc"],
    ]);
    const trailers = encodeHeaders([
      ["grpc-status", "0"],
      ["x-long", "v".repeat(300)],
    ]);
    const padded = (body: Buffer, pad: number) => Buffer.concat([Buffer.from([pad]), body, Buffer.alloc(pad)]);
    const { port } = await scripted([
      frame(HEADERS, END_HEADERS | PADDED | PRIORITY, 1, padded(Buffer.concat([Buffer.from([0, 0, 0, 0, 16]), headers]), 3)),
      frame(DATA, PADDED, 1, padded(Buffer.from("body"), 10)),
      frame(HEADERS, END_STREAM, 1, trailers.subarray(0, 5)),
      frame(CONTINUATION, 0, 1, trailers.subarray(5, 100)),
      frame(CONTINUATION, END_HEADERS, 1, trailers.subarray(100)),
    ]);
    const { conn } = await client(port);
    expect(await call(conn, "/x").answer).toEqual({
      blocks: [
        { fields: { ":status": "200", "content-type": "application/grpc" }, endStream: false },
        { fields: { "grpc-status": "0", "x-long": "v".repeat(300) }, endStream: true },
      ],
      end: { kind: "complete" },
    });
  });

  it("a frame inside a header block is a protocol error: GOAWAY PROTOCOL_ERROR, and the streams fail", async () => {
    const { port, received, clientGone } = await scripted([frame(HEADERS, 0, 1, encodeHeaders([[":status", "200"]])), frame(PING, 0, 0, Buffer.alloc(8))]);
    const { conn, ends } = await client(port);
    const { end } = await call(conn, "/x").answer;
    expect(end).toEqual({ kind: "failed", reason: "session error: a header block interrupted" });
    expect(ends).toEqual(["session error: a header block interrupted"]);
    await clientGone;
    expect(received.filter((f) => f.type === GOAWAY).map((f) => f.payload.readUInt32BE(4))).toEqual([0x1]);
  });

  it("an undecodable header block is a compression error: GOAWAY COMPRESSION_ERROR", async () => {
    const { port, received, clientGone } = await scripted([frame(HEADERS, END_HEADERS, 1, Buffer.from([0x80]))]);
    const { conn } = await client(port);
    const { end } = await call(conn, "/x").answer;
    expect(end).toEqual({ kind: "failed", reason: "session error: header block: index 0" });
    await clientGone;
    expect(received.filter((f) => f.type === GOAWAY).map((f) => f.payload.readUInt32BE(4))).toEqual([0x9]);
  });
});

describe("against the no-op grpc-js server", () => {
  let noop: Awaited<ReturnType<typeof startNoopServer>>;
  beforeAll(async () => {
    noop = await startNoopServer("127.0.0.1:0", readConfig(), quietLogger());
  });
  afterAll(async () => {
    await noop?.stop();
  });

  it("PlaceOrder calls are answered OK; an unknown method hears UNIMPLEMENTED in a trailers-only response", async () => {
    const { conn } = await client(noop.port);
    const message = PlaceOrderRequest.encode({ saleId: "01KAAAAAAAAAAAAAAAAAAAAAAA", quantity: 1, requestId: "r", purchaseToken: "", retry: false }).finish();
    const frame = Buffer.alloc(5 + message.length);
    frame.writeUInt32BE(message.length, 1);
    frame.set(message, 5);
    // As many as the server works on at once: past MAX_IN_FLIGHT (its stream limit is twice that) it refuses OVERLOADED.
    const calls = Array.from(
      { length: readConfig().maxInFlight },
      (_, i) =>
        call(
          conn,
          "/seckill.v1.OrderService/PlaceOrder",
          [
            ["x-user-id", `u${i}`],
            ["grpc-timeout", "5000m"],
          ],
          frame,
          noop.address,
        ).answer,
    );
    for (const { blocks, end } of await Promise.all(calls)) {
      expect(end).toEqual({ kind: "complete" });
      expect(blocks.map((b) => b.endStream)).toEqual([false, true]);
      expect(blocks[0].fields).toMatchObject({ ":status": "200", "content-type": "application/grpc+proto" });
      expect(blocks[1].fields["grpc-status"]).toBe("0");
    }
    const unknown = await call(conn, "/seckill.v1.OrderService/NoSuchMethod", [], frame, noop.address).answer;
    expect(unknown.end).toEqual({ kind: "complete" });
    expect(unknown.blocks).toHaveLength(1);
    expect(unknown.blocks[0]).toMatchObject({ fields: { "grpc-status": "12" }, endStream: true });
  });
});
