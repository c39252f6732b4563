// A bare HTTP/2 client for edge tests that need what a real client library
// never does: a header block left unfinished, more streams than the server
// allows, settings left unacknowledged. It writes frames by hand (header
// blocks as HPACK literals without indexing, no Huffman) and records every
// frame the server sends; it does not decode the server's header blocks, so
// tests read what they need from frame types, error codes and DATA payloads.
import { connect, type Socket } from "node:net";

export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;
/** HTTP/2 error codes (RFC 9113 §7) the tests meet. */
export const H2_ERROR = { NO_ERROR: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2, REFUSED_STREAM: 7, COMPRESSION_ERROR: 9 } as const;
export const SETTINGS_MAX_CONCURRENT_STREAMS = 0x3;

export interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
  /** Date.now() when it arrived. */
  at: number;
}

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

/** An HPACK integer with a 7-bit prefix (the string length of a literal, Huffman bit clear). */
function length7(n: number): Buffer {
  if (n < 127) return Buffer.from([n]);
  const bytes = [127];
  let rest = n - 127;
  while (rest >= 128) {
    bytes.push((rest & 0x7f) | 0x80);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

const literal = (s: string) => Buffer.concat([length7(Buffer.byteLength(s)), Buffer.from(s)]);

/** A header block of literal fields without indexing (new name): valid HPACK that leaves no state behind. */
export const headerBlock = (fields: readonly (readonly [string, string])[]): Buffer =>
  Buffer.concat(fields.flatMap(([name, value]) => [Buffer.from([0x00]), literal(name), literal(value)]));

/** The request headers of a gRPC call to `path`. */
export const grpcRequestHeaders = (path: string, authority: string): [string, string][] => [
  [":method", "POST"],
  [":scheme", "http"],
  [":path", path],
  [":authority", authority],
  ["content-type", "application/grpc"],
  ["te", "trailers"],
];

/** One gRPC length-prefixed message (uncompressed). */
export function grpcMessage(bytes: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + bytes.length);
  out.writeUInt32BE(bytes.length, 1);
  Buffer.from(bytes).copy(out, 5);
  return out;
}

/** The gRPC messages in the concatenated DATA payloads of a stream. */
export function grpcMessagesOf(data: Buffer): Buffer[] {
  const messages: Buffer[] = [];
  let at = 0;
  while (at + 5 <= data.length) {
    const length = data.readUInt32BE(at + 1);
    if (at + 5 + length > data.length) break;
    messages.push(data.subarray(at + 5, at + 5 + length));
    at += 5 + length;
  }
  return messages;
}

export interface RawH2 {
  socket: Socket;
  /** Every frame the server sent so far. */
  frames: Frame[];
  /** The server's first SETTINGS, as identifier → value. */
  settings: Map<number, number>;
  closed(): boolean;
  /** Resolves when the server closed the connection (or after timeoutMs, with false). */
  whenClosed(timeoutMs: number): Promise<boolean>;
  send(bytes: Buffer): void;
  /** The frame that matches, waiting up to timeoutMs; rejects when none came. */
  waitFor(match: (f: Frame) => boolean, timeoutMs: number, what: string): Promise<Frame>;
  /** The frames of one stream. */
  stream(id: number): Frame[];
  /** The RST_STREAM error code the server sent on a stream, if any. */
  resetCode(id: number): number | undefined;
  /** The concatenated DATA payloads the server sent on a stream. */
  dataOf(id: number): Buffer;
  /** Whether the server ended the stream (END_STREAM on HEADERS or DATA). */
  ended(id: number): boolean;
  close(): void;
}

/**
 * Connects, sends the preface and an empty SETTINGS, and resolves once the
 * server's SETTINGS arrived. With ackSettings false the server's SETTINGS are
 * never acknowledged, so the server cannot rely on the client knowing them.
 */
export function openRawH2(port: number, options: { ackSettings: boolean }): Promise<RawH2> {
  const socket = connect(port, "127.0.0.1");
  const frames: Frame[] = [];
  const settings = new Map<number, number>();
  const waiters = new Set<() => void>();
  let buffer = Buffer.alloc(0);
  let isClosed = false;
  const wake = () => {
    for (const w of [...waiters]) w();
  };
  socket.on("error", () => undefined);
  socket.on("close", () => {
    isClosed = true;
    wake();
  });
  socket.on("data", (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    while (buffer.length >= 9) {
      const length = buffer.readUIntBE(0, 3);
      if (buffer.length < 9 + length) break;
      const f: Frame = { type: buffer[3], flags: buffer[4], streamId: buffer.readUInt32BE(5) & 0x7fffffff, payload: Buffer.from(buffer.subarray(9, 9 + length)), at: Date.now() };
      buffer = buffer.subarray(9 + length);
      frames.push(f);
      if (f.type === FRAME.SETTINGS && !(f.flags & FLAG.ACK)) {
        if (settings.size === 0) for (let i = 0; i + 6 <= f.payload.length; i += 6) settings.set(f.payload.readUInt16BE(i), f.payload.readUInt32BE(i + 2));
        if (options.ackSettings) socket.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
      }
      if (f.type === FRAME.PING && !(f.flags & FLAG.ACK)) socket.write(frame(FRAME.PING, FLAG.ACK, 0, f.payload));
    }
    wake();
  });
  const raw: RawH2 = {
    socket,
    frames,
    settings,
    closed: () => isClosed,
    whenClosed(timeoutMs) {
      return new Promise((resolve) => {
        if (isClosed) return resolve(true);
        const timer = setTimeout(() => {
          waiters.delete(check);
          resolve(false);
        }, timeoutMs);
        const check = () => {
          if (!isClosed) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(true);
        };
        waiters.add(check);
      });
    },
    send: (bytes) => void socket.write(bytes),
    waitFor(match, timeoutMs, what) {
      return new Promise((resolve, reject) => {
        const found = () => frames.find(match);
        const now = found();
        if (now) return resolve(now);
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no ${what} within ${timeoutMs} ms; frames: ${frames.map((f) => `${f.type}/${f.flags}@${f.streamId}`).join(" ")}${isClosed ? " (closed)" : ""}`));
        }, timeoutMs);
        const check = () => {
          const f = found();
          if (!f && !isClosed) return;
          clearTimeout(timer);
          waiters.delete(check);
          if (f) resolve(f);
          else reject(new Error(`no ${what}: the connection closed; frames: ${frames.map((x) => `${x.type}/${x.flags}@${x.streamId}`).join(" ")}`));
        };
        waiters.add(check);
      });
    },
    stream: (id) => frames.filter((f) => f.streamId === id),
    resetCode(id) {
      const rst = frames.find((f) => f.streamId === id && f.type === FRAME.RST_STREAM);
      return rst?.payload.readUInt32BE(0);
    },
    dataOf: (id) => Buffer.concat(frames.filter((f) => f.streamId === id && f.type === FRAME.DATA).map((f) => f.payload)),
    ended: (id) => frames.some((f) => f.streamId === id && (f.type === FRAME.HEADERS || f.type === FRAME.DATA) && (f.flags & FLAG.END_STREAM) !== 0),
    close: () => void socket.destroy(),
  };
  return new Promise((resolve, reject) => {
    socket.once("connect", () => {
      socket.write(PREFACE);
      socket.write(frame(FRAME.SETTINGS, 0, 0));
    });
    raw
      .waitFor((f) => f.type === FRAME.SETTINGS && !(f.flags & FLAG.ACK), 5000, "server SETTINGS")
      .then(
        () => resolve(raw),
        (error) => {
          socket.destroy();
          reject(error);
        },
      );
  });
}
