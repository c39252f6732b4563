// Load shedding at the HTTP/2 stream, before grpc-js sees the call.
//
// A call refused inside a grpc-js handler has already cost grpc-js its full
// per-call work (metadata parsing, call objects, message decoding, the status
// and trailers): ~140 µs of CPU, more than a no-op call. Under several times
// the load a process can serve, refusing at that price saturates the process
// with refusals, calls queue in the socket before anyone looks at them and the
// admitted ones wait seconds. Here a call past the in-flight limit is answered
// from the stream's headers alone, with one pre-built trailers-only response
// (UNAVAILABLE, OVERLOADED, RetryInfo): ~90 µs, most of it Node's HTTP/2
// stream and socket work, which no server in this process can avoid.
//
// The same place answers, from the request alone, what a service declares
// answerable without any I/O (a QuickAnswer: PlaceOrder for a sale this
// process saw sell out), so that the answer almost every buyer gets in a
// flash sale skips grpc-js too. A call it does not answer goes on to grpc-js
// with its bytes untouched.
//
// grpc-js does not expose its HTTP/2 servers: they are read from its private
// `http2Servers` map (grpc-js is pinned in package.json; admission.test.ts
// fails if a release moves it, and start-up refuses to run without the gate).
import type { Server } from "@grpc/grpc-js";
import type { Http2Server, IncomingHttpHeaders, ServerHttp2Stream, OutgoingHttpHeaders } from "node:http2";
import { DETAILS_TRAILER } from "@seckill/sdk";
import { refusalStatus } from "./grpc-errors.js";
import { invalid, type Refusal } from "./refusal.js";

/**
 * A refusal known from a call's headers and request message alone, without
 * any I/O; undefined lets the call go on to its handler. It must be the
 * answer the handler would give.
 */
export type QuickAnswer = (headers: IncomingHttpHeaders, message: Buffer) => Refusal | undefined;

export interface AdmissionOptions {
  /** Gated calls in progress beyond which new ones are refused. */
  maxInFlight: number;
  /** A refused call's body is read and dropped up to this size, then answered without reading further. */
  maxMessageBytes: number;
  /** The refusal sent past the limit (an UNAVAILABLE one, with a retry hint). */
  refusal: Refusal;
  /** The paths ("/pkg.Service/Method") the limit applies to; any other call (health, reflection, streams) always goes through. */
  gatedPaths: ReadonlySet<string>;
  /** By path: refusals answered here from the request message (see QuickAnswer). */
  quickAnswers?: ReadonlyMap<string, QuickAnswer>;
  /** Told of every call answered here, e.g. to count it: its status code, the refusal's reason, seconds since it arrived. */
  onRefused?: (path: string, answer: { code: number; reason: string }, seconds: number) => void;
}

type StreamListener = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, ...rest: unknown[]) => void;

/** The HTTP/2 servers a bound grpc-js Server listens with. */
export function http2ServersOf(server: Server): Http2Server[] {
  const servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(servers instanceof Map)) throw new Error("grpc-js no longer keeps its HTTP/2 servers in `http2Servers`: the admission gate cannot be installed");
  return [...servers.keys()] as Http2Server[];
}

/** The trailers-only response of a refusal, built once. */
export function refusalHeaders(refusal: Refusal): OutgoingHttpHeaders {
  const status = refusalStatus(refusal);
  const details = status.metadata.get(DETAILS_TRAILER)[0] as Buffer;
  return {
    ":status": 200,
    "content-type": "application/grpc",
    "grpc-status": String(status.code),
    "grpc-message": percentEncode(status.details),
    [DETAILS_TRAILER]: details.toString("base64"),
  };
}

/** grpc-message's encoding: bytes outside printable ASCII, and '%', as %XX. */
function percentEncode(message: string): string {
  let out = "";
  for (const byte of Buffer.from(message, "utf8")) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** Larger request messages are not looked at here (PlaceOrder's are ~100 bytes). */
const PEEK_MAX_BYTES = 4096;

const INCOMPLETE = invalid("request", "the request ended before a complete message");

/**
 * Reads a call's first message: calls back with it and every byte read so
 * far, or with no message when it is compressed or larger than
 * PEEK_MAX_BYTES (the bytes read are handed back for grpc-js), or calls
 * `ended` when the request ends before a complete message.
 */
function peekMessage(stream: ServerHttp2Stream, read: (message: Buffer | undefined, seen: Buffer) => void, ended: () => void): void {
  let seen: Buffer = Buffer.alloc(0);
  const stop = () => {
    stream.off("data", onData);
    stream.off("end", onEnd);
    stream.pause();
  };
  const onData = (chunk: Buffer) => {
    seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
    if (seen.length < 5) return;
    const length = seen.readUInt32BE(1);
    if (seen[0] !== 0 || length > PEEK_MAX_BYTES) {
      stop();
      read(undefined, seen);
    } else if (seen.length >= 5 + length) {
      stop();
      read(seen.subarray(5, 5 + length), seen);
    }
  };
  const onEnd = () => {
    stop();
    ended();
  };
  stream.on("data", onData);
  stream.once("end", onEnd);
}

/**
 * Puts the gate in front of grpc-js on every HTTP/2 server of a bound Server:
 * grpc-js's own stream listeners are called only for calls it does not answer.
 */
export function installAdmissionGate(server: Server, options: AdmissionOptions): void {
  let inFlight = 0;
  // A call holds its place until its answer is sent (the stream's writable
  // side finished) or the stream closes, whichever comes first: a call
  // answered while its client is still sending (a message over the size
  // limit, refused without being read to its end) closes only much later,
  // and must not hold a place meanwhile.
  const hold = (stream: ServerHttp2Stream) => {
    inFlight++;
    let held = true;
    const release = () => {
      if (held) inFlight--;
      held = false;
    };
    stream.once("finish", release);
    stream.once("close", release);
  };
  const responses = new WeakMap<Refusal, { headers: OutgoingHttpHeaders; code: number }>();
  const responseTo = (refusal: Refusal) => {
    let response = responses.get(refusal);
    if (!response) {
      const headers = refusalHeaders(refusal);
      response = { headers, code: Number(headers["grpc-status"]) };
      responses.set(refusal, response);
    }
    return response;
  };
  const answer = (stream: ServerHttp2Stream, path: string, refusal: Refusal, started: number) => {
    const { headers, code } = responseTo(refusal);
    options.onRefused?.(path, { code, reason: refusal.reason }, (performance.now() - started) / 1000);
    if (!stream.destroyed && !stream.headersSent) stream.respond(headers, { endStream: true });
  };
  // A refused call's request is read to its end (and dropped) before the
  // answer, so the stream closes cleanly on both sides, without a reset; a
  // body past the message size limit is answered at once instead.
  const shed = (stream: ServerHttp2Stream, path: string, started: number) => {
    let bytes = 0;
    stream.on("data", (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > options.maxMessageBytes) answer(stream, path, options.refusal, started);
    });
    stream.once("end", () => answer(stream, path, options.refusal, started));
  };

  for (const h2 of http2ServersOf(server)) {
    const downstream = h2.listeners("stream") as StreamListener[];
    if (downstream.length === 0) throw new Error("grpc-js registered no stream listener: the admission gate cannot be installed");
    h2.removeAllListeners("stream");
    const pass = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rest: unknown[]) => {
      for (const listener of downstream) listener.call(h2, stream, headers, ...rest);
    };
    h2.on("stream", (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, ...rest: unknown[]) => {
      const path = headers[":path"];
      if (path === undefined || !options.gatedPaths.has(path)) return pass(stream, headers, rest);
      // As grpc-js does for the streams it handles: a stream the gate answers or
      // holds can end in an error (a proxy resetting it, its connection dying),
      // and an 'error' event without a listener would end the process.
      stream.on("error", () => undefined);
      const started = performance.now();
      if (inFlight >= options.maxInFlight) return shed(stream, path, started);
      hold(stream);
      const quick = options.quickAnswers?.get(path);
      if (!quick) return pass(stream, headers, rest);
      peekMessage(
        stream,
        (message, seen) => {
          const refusal = message && quick(headers, message);
          if (refusal) {
            stream.resume(); // the rest of the request, if any, is dropped
            return answer(stream, path, refusal, started);
          }
          if (seen.length > 0) stream.unshift(seen);
          pass(stream, headers, rest);
        },
        () => answer(stream, path, INCOMPLETE, started),
      );
    });
  }
}
