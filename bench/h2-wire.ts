// A minimal HTTP/2 client (RFC 9113) written straight on a TCP socket, for the
// load generator: node:http2 costs more CPU per call than the gRPC server it
// measures, and the two share the machine. It does what unary gRPC calls
// need and no more: streams of one header block plus one body, responses read
// as header blocks (HPACK-decoded; DATA is only counted for flow control),
// the peer's concurrency limit and flow-control windows honoured, PING and
// SETTINGS acknowledged, GOAWAY and resets reported. No TLS, no push, no
// priorities.
//
// Most of the saving is in the writes: frames go into one buffer and reach
// the socket in one write per event-loop turn, however many calls they carry.
import net from "node:net";
import { HpackDecoder, type HeaderField } from "./hpack.js";

// Frame types (RFC 9113 §6). PRIORITY and unknown types are ignored.
const DATA = 0x0;
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const PUSH_PROMISE = 0x5;
const PING = 0x6;
const GOAWAY = 0x7;
const WINDOW_UPDATE = 0x8;
const CONTINUATION = 0x9;

// Flags.
const END_STREAM = 0x1;
const ACK = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY = 0x20;

// Settings (§6.5.2).
const SETTINGS_HEADER_TABLE_SIZE = 0x1;
const SETTINGS_ENABLE_PUSH = 0x2;
const SETTINGS_MAX_CONCURRENT_STREAMS = 0x3;
const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
const SETTINGS_MAX_FRAME_SIZE = 0x5;

// Error codes (§7).
const NO_ERROR = 0x0;
const PROTOCOL_ERROR = 0x1;
const FLOW_CONTROL_ERROR = 0x3;
const FRAME_SIZE_ERROR = 0x6;
const CANCEL = 0x8;
const COMPRESSION_ERROR = 0x9;

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
const FRAME_HEADER = 9;
/** The largest frame either side may send until told otherwise, and all we accept. */
const DEFAULT_MAX_FRAME = 16_384;
const DEFAULT_WINDOW = 65_535;
const MAX_WINDOW = 2 ** 31 - 1;
const MAX_STREAM_ID = 2 ** 31 - 1;
const HEADER_TABLE_SIZE = 4096;
/**
 * What the server may send before we return credit, per stream and for the
 * connection. Only the connection's is replenished: a unary response is far
 * below 16 MiB (gRPC caps messages at a few MiB), and its stream then ends.
 */
const RECEIVE_WINDOW = 16 << 20;
const OUT_CHUNK = 64 * 1024;

/** How a stream ended. */
export type StreamEnd =
  /** The server ended its side (END_STREAM). */
  | { kind: "complete" }
  /** The server reset it (RST_STREAM). */
  | { kind: "reset"; code: number }
  /** cancel() was called. */
  | { kind: "cancelled" }
  /** The connection failed, or the server's GOAWAY left the stream out. */
  | { kind: "failed"; reason: string };

const COMPLETE: StreamEnd = { kind: "complete" };
const CANCELLED: StreamEnd = { kind: "cancelled" };

export interface StreamHandler {
  /**
   * A response header block: the headers (informational ones too), then the
   * trailers; endStream marks the last one, which for a trailers-only
   * response is the only one. Fields are shared: do not modify them.
   */
  onHeaders(fields: HeaderField[], endStream: boolean): void;
  /** Called once, last. From cancel() it is called synchronously. */
  onEnd(end: StreamEnd): void;
}

export interface ClientStream {
  /** Resets the stream (RST_STREAM CANCEL), or drops it if it is still queued; no-op once it has ended. */
  cancel(): void;
}

export interface ConnectOptions {
  host: string;
  port: number;
  /**
   * Called once when the connection stops taking new streams: a GOAWAY (its
   * error code in the reason), a protocol error, or the socket failing or
   * closing. Not called for close().
   */
  onEnd?: (reason: string) => void;
}

class Stream implements ClientStream {
  /** Body octets sent so far. */
  sent = 0;
  /** What the peer lets us send on this stream. */
  sendWindow = 0;
  /** END_STREAM sent. */
  localEnded = false;
  closed = false;

  constructor(
    private readonly conn: H2Connection,
    readonly id: number,
    readonly headerBlock: readonly Buffer[],
    readonly body: Buffer,
    readonly handler: StreamHandler,
  ) {}

  cancel(): void {
    this.conn.cancel(this);
  }
}

/** Opens a connection; resolves once the server's first SETTINGS (its stream limit) has arrived. */
export function connect(options: ConnectOptions): Promise<H2Connection> {
  return new Promise((resolve, reject) => {
    // No Nagle: a batch must leave now, not wait for the ACK of the previous one.
    const socket = net.connect({ host: options.host, port: options.port, noDelay: true });
    new H2Connection(socket, options.onEnd ?? (() => {}), resolve, reject);
  });
}

export class H2Connection {
  private readonly decoder = new HpackDecoder(HEADER_TABLE_SIZE);
  private readonly streams = new Map<number, Stream>();
  /** Streams beyond the server's SETTINGS_MAX_CONCURRENT_STREAMS, to open in order. */
  private readonly queued: Stream[] = [];
  /** Open streams whose body the flow-control windows hold back, in order. */
  private blocked: Stream[] = [];
  private nextId = 1;

  // The server's settings and our send window.
  private ready = false;
  private maxStreams = Infinity; // no limit until the server says one (§6.5.2)
  private peerInitialWindow = DEFAULT_WINDOW;
  private peerMaxFrame = DEFAULT_MAX_FRAME;
  private sendWindow = DEFAULT_WINDOW;

  /** DATA octets received since our last connection WINDOW_UPDATE. */
  private unacknowledged = 0;
  /** A header block spread over CONTINUATION frames: its stream (0: none), END_STREAM and parts. */
  private headerStream = 0;
  private headerEndStream = false;
  private headerFragments: Buffer[] = [];
  /** The start of a frame the last socket read cut short. */
  private partial: Buffer | undefined;

  /** Frames not yet handed to the socket are out[outStart, outEnd); what lies before is the socket's. */
  private out = Buffer.allocUnsafe(OUT_CHUNK);
  private outStart = 0;
  private outEnd = 0;
  private flushScheduled = false;

  /** Set once no new streams are taken, with why. */
  private endReason: string | undefined;
  private failed = false;
  private socketClosed = false;

  /** Use connect(). */
  constructor(
    private readonly socket: net.Socket,
    private readonly onEnd: (reason: string) => void,
    private readonly resolveReady: (conn: H2Connection) => void,
    private readonly rejectReady: (error: Error) => void,
  ) {
    socket.on("data", (chunk: Buffer) => this.read(chunk));
    socket.on("error", (error) => this.fail(`session error: ${error.message}`));
    socket.on("close", () => {
      this.socketClosed = true;
      this.fail("session closed");
    });
    socket.write(PREFACE);
    const at = this.frame(SETTINGS, 0, 0, 18);
    this.out.writeUInt16BE(SETTINGS_ENABLE_PUSH, at);
    this.out.writeUInt32BE(0, at + 2);
    this.out.writeUInt16BE(SETTINGS_INITIAL_WINDOW_SIZE, at + 6);
    this.out.writeUInt32BE(RECEIVE_WINDOW, at + 8);
    this.out.writeUInt16BE(SETTINGS_HEADER_TABLE_SIZE, at + 12);
    this.out.writeUInt32BE(HEADER_TABLE_SIZE, at + 14);
    // The connection window is not a setting: it grows by WINDOW_UPDATE only.
    this.windowUpdate(0, RECEIVE_WINDOW - DEFAULT_WINDOW);
  }

  /**
   * Starts a request: HEADERS carrying the header block (the concatenation of
   * the given parts), then the body in DATA ending the stream. Beyond the
   * server's stream limit it waits its turn here. Throws once the connection
   * takes no new streams.
   */
  request(headerBlock: readonly Buffer[], body: Buffer, handler: StreamHandler): ClientStream {
    if (this.endReason !== undefined) throw new Error(`connection not taking streams: ${this.endReason}`);
    // Ids are handed out in request order and queued streams open in that
    // order, so ids on the wire only ever grow.
    if (this.nextId > MAX_STREAM_ID) throw new Error("stream ids exhausted");
    const stream = new Stream(this, this.nextId, headerBlock, body, handler);
    this.nextId += 2;
    if (this.queued.length === 0 && this.streams.size < this.maxStreams) this.open(stream);
    else this.queued.push(stream);
    return stream;
  }

  /** GOAWAY, then the socket closed; streams still open fail. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.socketClosed) return resolve();
      this.socket.once("close", () => resolve());
      this.endReason ??= "closed"; // set first: close() is no end onEnd reports
      this.goAway(NO_ERROR);
      this.fail("closed by the client");
    });
  }

  /** ClientStream.cancel. */
  cancel(stream: Stream): void {
    if (stream.closed) return;
    const at = this.queued.indexOf(stream);
    if (at >= 0) {
      this.queued.splice(at, 1);
      stream.closed = true;
      stream.handler.onEnd(CANCELLED);
      return;
    }
    const rst = this.frame(RST_STREAM, 0, stream.id, 4);
    this.out.writeUInt32BE(CANCEL, rst);
    this.closeStream(stream, CANCELLED);
  }

  // ------------------------------------------------------------ streams

  private open(stream: Stream): void {
    this.streams.set(stream.id, stream);
    stream.sendWindow = this.peerInitialWindow;
    this.writeHeaders(stream);
    if (this.blocked.length > 0 || !this.sendBody(stream)) this.blocked.push(stream);
  }

  private writeHeaders(stream: Stream): void {
    const parts = stream.headerBlock;
    let length = 0;
    for (const part of parts) length += part.length;
    if (length <= this.peerMaxFrame) {
      let at = this.frame(HEADERS, END_HEADERS, stream.id, length);
      for (const part of parts) {
        this.out.set(part, at);
        at += part.length;
      }
      return;
    }
    // Larger than a frame: HEADERS and CONTINUATION frames, back to back.
    const block = Buffer.concat(parts);
    for (let from = 0; from < block.length; from += this.peerMaxFrame) {
      const to = Math.min(from + this.peerMaxFrame, block.length);
      const at = this.frame(from === 0 ? HEADERS : CONTINUATION, to === block.length ? END_HEADERS : 0, stream.id, to - from);
      block.copy(this.out, at, from, to);
    }
  }

  /** Sends what the windows allow of the body; true once it has all gone (END_STREAM sent). */
  private sendBody(stream: Stream): boolean {
    const body = stream.body;
    for (;;) {
      const remaining = body.length - stream.sent;
      const n = Math.max(0, Math.min(remaining, this.sendWindow, stream.sendWindow, this.peerMaxFrame));
      if (n === 0 && remaining > 0) return false;
      const last = n === remaining;
      const at = this.frame(DATA, last ? END_STREAM : 0, stream.id, n);
      body.copy(this.out, at, stream.sent, stream.sent + n);
      stream.sent += n;
      stream.sendWindow -= n;
      this.sendWindow -= n;
      if (last) {
        stream.localEnded = true;
        return true;
      }
    }
  }

  /** After a window grew: sends what now fits, oldest stream first. */
  private sendBlocked(): void {
    if (this.blocked.length === 0) return;
    const waiting = this.blocked;
    this.blocked = [];
    for (const stream of waiting) if (!stream.closed && (this.blocked.length > 0 || !this.sendBody(stream))) this.blocked.push(stream);
  }

  private openQueued(): void {
    while (this.queued.length > 0 && this.streams.size < this.maxStreams) this.open(this.queued.shift()!);
  }

  private closeStream(stream: Stream, end: StreamEnd): void {
    stream.closed = true;
    this.streams.delete(stream.id);
    if (!stream.localEnded) {
      // Streams queue behind a blocked one: let them go.
      const at = this.blocked.indexOf(stream);
      if (at >= 0) this.blocked.splice(at, 1);
      this.sendBlocked();
    }
    // The freed slot goes to the oldest queued stream, before the handler can ask for a new one.
    this.openQueued();
    stream.handler.onEnd(end);
    if (this.endReason !== undefined && this.streams.size === 0) this.goAway(NO_ERROR);
  }

  /** The server ended its side: the response is complete, so the rest of the request is not needed. */
  private remoteEnded(stream: Stream): void {
    if (stream.closed) return;
    if (!stream.localEnded) {
      const at = this.frame(RST_STREAM, 0, stream.id, 4);
      this.out.writeUInt32BE(CANCEL, at);
    }
    this.closeStream(stream, COMPLETE);
  }

  // ------------------------------------------------------- reading frames

  private read(chunk: Buffer): void {
    const data = this.partial ? Buffer.concat([this.partial, chunk]) : chunk;
    this.partial = undefined;
    let at = 0;
    while (data.length - at >= FRAME_HEADER && !this.failed) {
      const length = (data[at] << 16) | (data[at + 1] << 8) | data[at + 2];
      if (length > DEFAULT_MAX_FRAME) return this.connectionError(FRAME_SIZE_ERROR, `a ${length}-octet frame`);
      if (data.length - at < FRAME_HEADER + length) break;
      const type = data[at + 3];
      const flags = data[at + 4];
      const id = data.readUInt32BE(at + 5) & 0x7fffffff;
      const payload = data.subarray(at + FRAME_HEADER, at + FRAME_HEADER + length);
      at += FRAME_HEADER + length;
      this.onFrame(type, flags, id, payload);
    }
    if (at < data.length && !this.failed) this.partial = data.subarray(at);
  }

  private onFrame(type: number, flags: number, id: number, payload: Buffer): void {
    if (this.headerStream !== 0 && (type !== CONTINUATION || id !== this.headerStream)) {
      return this.connectionError(PROTOCOL_ERROR, "a header block interrupted");
    }
    switch (type) {
      case DATA:
        return this.onData(flags, id, payload);
      case HEADERS:
        return this.onHeaders(flags, id, payload);
      case CONTINUATION:
        return this.onContinuation(flags, id, payload);
      case RST_STREAM:
        return this.onRstStream(id, payload);
      case SETTINGS:
        return this.onSettings(flags, id, payload);
      case PUSH_PROMISE:
        return this.connectionError(PROTOCOL_ERROR, "PUSH_PROMISE with push disabled");
      case PING:
        return this.onPing(flags, id, payload);
      case GOAWAY:
        return this.onGoAway(id, payload);
      case WINDOW_UPDATE:
        return this.onWindowUpdate(id, payload);
    }
  }

  private onData(flags: number, id: number, payload: Buffer): void {
    if (id === 0) return this.connectionError(PROTOCOL_ERROR, "DATA on stream 0");
    if (unpad(flags, payload) === undefined) return this.connectionError(PROTOCOL_ERROR, "padding longer than the frame");
    // All of the payload, padding included, counts against the window (§6.9.1).
    this.unacknowledged += payload.length;
    if (this.unacknowledged >= RECEIVE_WINDOW / 2) {
      this.windowUpdate(0, this.unacknowledged);
      this.unacknowledged = 0;
    }
    const stream = this.streams.get(id);
    if (stream && flags & END_STREAM) this.remoteEnded(stream);
  }

  private onHeaders(flags: number, id: number, payload: Buffer): void {
    if (id === 0) return this.connectionError(PROTOCOL_ERROR, "HEADERS on stream 0");
    let fragment = unpad(flags, payload);
    if (flags & PRIORITY) fragment = fragment && fragment.length >= 5 ? fragment.subarray(5) : undefined;
    if (fragment === undefined) return this.connectionError(PROTOCOL_ERROR, "HEADERS shorter than its padding and priority");
    const endStream = (flags & END_STREAM) !== 0;
    if (flags & END_HEADERS) return this.onHeaderBlock(id, endStream, fragment);
    this.headerStream = id;
    this.headerEndStream = endStream;
    this.headerFragments = [fragment];
  }

  private onContinuation(flags: number, id: number, payload: Buffer): void {
    if (this.headerStream === 0) return this.connectionError(PROTOCOL_ERROR, "CONTINUATION without HEADERS");
    this.headerFragments.push(payload);
    if ((flags & END_HEADERS) === 0) return;
    const block = Buffer.concat(this.headerFragments);
    this.headerStream = 0;
    this.headerFragments = [];
    this.onHeaderBlock(id, this.headerEndStream, block);
  }

  private onHeaderBlock(id: number, endStream: boolean, block: Buffer): void {
    // Decoded even for a stream we no longer track: the table must stay in step with the server's.
    let fields: HeaderField[];
    try {
      fields = this.decoder.decode(block);
    } catch (error) {
      return this.connectionError(COMPRESSION_ERROR, `header block: ${(error as Error).message}`);
    }
    const stream = this.streams.get(id);
    if (!stream) return;
    stream.handler.onHeaders(fields, endStream);
    if (endStream) this.remoteEnded(stream);
  }

  private onRstStream(id: number, payload: Buffer): void {
    if (payload.length !== 4) return this.connectionError(FRAME_SIZE_ERROR, "RST_STREAM not 4 octets");
    if (id === 0) return this.connectionError(PROTOCOL_ERROR, "RST_STREAM on stream 0");
    const stream = this.streams.get(id);
    if (stream) this.closeStream(stream, { kind: "reset", code: payload.readUInt32BE(0) });
  }

  private onSettings(flags: number, id: number, payload: Buffer): void {
    if (id !== 0) return this.connectionError(PROTOCOL_ERROR, "SETTINGS on a stream");
    if (flags & ACK) return;
    if (payload.length % 6 !== 0) return this.connectionError(FRAME_SIZE_ERROR, "SETTINGS not a multiple of 6 octets");
    for (let at = 0; at < payload.length; at += 6) {
      const value = payload.readUInt32BE(at + 2);
      switch (payload.readUInt16BE(at)) {
        case SETTINGS_MAX_CONCURRENT_STREAMS:
          this.maxStreams = value;
          break;
        case SETTINGS_INITIAL_WINDOW_SIZE: {
          if (value > MAX_WINDOW) return this.connectionError(FLOW_CONTROL_ERROR, `initial window ${value}`);
          // Applies to open streams too, by the difference; a window may go negative (§6.9.2).
          const delta = value - this.peerInitialWindow;
          this.peerInitialWindow = value;
          for (const stream of this.streams.values()) stream.sendWindow += delta;
          break;
        }
        case SETTINGS_MAX_FRAME_SIZE:
          if (value < DEFAULT_MAX_FRAME || value > 2 ** 24 - 1) return this.connectionError(PROTOCOL_ERROR, `max frame size ${value}`);
          this.peerMaxFrame = value;
          break;
      }
    }
    this.frame(SETTINGS, ACK, 0, 0);
    if (!this.ready) {
      this.ready = true;
      this.resolveReady(this);
    }
    this.openQueued();
    this.sendBlocked();
  }

  private onPing(flags: number, id: number, payload: Buffer): void {
    if (payload.length !== 8) return this.connectionError(FRAME_SIZE_ERROR, "PING not 8 octets");
    if (id !== 0) return this.connectionError(PROTOCOL_ERROR, "PING on a stream");
    if (flags & ACK) return;
    const at = this.frame(PING, ACK, 0, 8);
    this.out.set(payload, at);
  }

  /** Streams above the last one the server will process fail; those below may still finish. */
  private onGoAway(id: number, payload: Buffer): void {
    if (id !== 0) return this.connectionError(PROTOCOL_ERROR, "GOAWAY on a stream");
    if (payload.length < 8) return this.connectionError(FRAME_SIZE_ERROR, "GOAWAY under 8 octets");
    const lastStreamId = payload.readUInt32BE(0) & 0x7fffffff;
    const reason = `goaway ${payload.readUInt32BE(4)}`;
    this.stopTaking(reason);
    const end: StreamEnd = { kind: "failed", reason };
    for (const stream of this.queued.splice(0)) {
      stream.closed = true;
      stream.handler.onEnd(end);
    }
    for (const stream of [...this.streams.values()]) if (stream.id > lastStreamId && !stream.closed) this.closeStream(stream, end);
    if (this.streams.size === 0) this.goAway(NO_ERROR);
  }

  private onWindowUpdate(id: number, payload: Buffer): void {
    if (payload.length !== 4) return this.connectionError(FRAME_SIZE_ERROR, "WINDOW_UPDATE not 4 octets");
    const increment = payload.readUInt32BE(0) & 0x7fffffff;
    // Strictly, a zero increment or an overflow on a stream is a stream error; a bench's server never sends either.
    if (increment === 0) return this.connectionError(PROTOCOL_ERROR, "WINDOW_UPDATE of 0");
    if (id === 0) {
      this.sendWindow += increment;
      if (this.sendWindow > MAX_WINDOW) return this.connectionError(FLOW_CONTROL_ERROR, "connection window over 2^31-1");
    } else {
      const stream = this.streams.get(id);
      if (!stream) return;
      stream.sendWindow += increment;
      if (stream.sendWindow > MAX_WINDOW) return this.connectionError(FLOW_CONTROL_ERROR, "stream window over 2^31-1");
    }
    this.sendBlocked();
  }

  // ------------------------------------------------------ ending, failing

  private stopTaking(reason: string): void {
    if (this.endReason !== undefined) return;
    this.endReason = reason;
    this.onEnd(reason);
  }

  /** Every stream, open or queued, fails; the connection takes no more. */
  private fail(reason: string): void {
    if (this.failed) return;
    this.failed = true;
    if (!this.ready) this.rejectReady(new Error(reason));
    this.stopTaking(reason);
    const end: StreamEnd = { kind: "failed", reason };
    const streams = [...this.streams.values(), ...this.queued];
    this.streams.clear();
    this.queued.length = 0;
    this.blocked = [];
    for (const stream of streams) {
      stream.closed = true;
      stream.handler.onEnd(end);
    }
  }

  private connectionError(code: number, message: string): void {
    this.goAway(code);
    this.fail(`session error: ${message}`);
  }

  /**
   * How the connection always ends: a GOAWAY (§5.4.1 asks for one before
   * closing; our last stream id is 0, as we take no streams from the server),
   * what is buffered, then the socket closed without waiting for the
   * server's side.
   */
  private goAway(code: number): void {
    if (!this.socket.writable) return;
    const at = this.frame(GOAWAY, 0, 0, 8);
    this.out.writeUInt32BE(0, at);
    this.out.writeUInt32BE(code, at + 4);
    this.flush();
    this.socket.end(() => this.socket.destroy());
  }

  // ------------------------------------------------------- writing frames

  /** Appends a frame header to the output and returns where its payload of `length` octets goes. */
  private frame(type: number, flags: number, id: number, length: number): number {
    if (this.outEnd + FRAME_HEADER + length > this.out.length) this.grow(FRAME_HEADER + length);
    const out = this.out;
    const at = this.outEnd;
    out[at] = length >>> 16;
    out[at + 1] = (length >>> 8) & 0xff;
    out[at + 2] = length & 0xff;
    out[at + 3] = type;
    out[at + 4] = flags;
    out.writeUInt32BE(id, at + 5);
    this.outEnd = at + FRAME_HEADER + length;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flush);
    }
    return at + FRAME_HEADER;
  }

  /** A new output buffer for what is not yet written; the old one stays with the socket. */
  private grow(needed: number): void {
    const pending = this.outEnd - this.outStart;
    const fresh = Buffer.allocUnsafe(Math.max(OUT_CHUNK, 2 * (pending + needed)));
    this.out.copy(fresh, 0, this.outStart, this.outEnd);
    this.out = fresh;
    this.outStart = 0;
    this.outEnd = pending;
  }

  private windowUpdate(id: number, increment: number): void {
    const at = this.frame(WINDOW_UPDATE, 0, id, 4);
    this.out.writeUInt32BE(increment, at);
  }

  /** One socket write for everything framed since the last one. */
  private readonly flush = (): void => {
    this.flushScheduled = false;
    if (this.outEnd === this.outStart || !this.socket.writable) return;
    this.socket.write(this.out.subarray(this.outStart, this.outEnd));
    this.outStart = this.outEnd;
  };
}

/** A DATA or HEADERS payload without its padding; undefined when the padding does not fit. */
function unpad(flags: number, payload: Buffer): Buffer | undefined {
  if ((flags & PADDED) === 0) return payload;
  if (payload.length === 0 || payload[0] >= payload.length) return undefined;
  return payload.subarray(1, payload.length - payload[0]);
}
