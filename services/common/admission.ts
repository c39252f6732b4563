// Load shedding at the HTTP/2 stream, before grpc-js sees the call.
//
// A call refused inside a grpc-js handler has already cost grpc-js its full
// per-call work (metadata parsing, call objects, message decoding, the status
// and trailers): ~130 µs, most of what an admitted call costs. Under several
// times the load a process can serve, refusing at that price saturates the
// process with refusals, calls queue in the socket before anyone looks at them
// and the admitted ones wait seconds. Here a call past the in-flight limit is
// answered from the stream's headers alone, with one pre-built trailers-only
// response (UNAVAILABLE, OVERLOADED, RetryInfo), at a fraction of that cost.
//
// grpc-js does not expose its HTTP/2 servers: they are read from its private
// `http2Servers` map (grpc-js is pinned in package.json; admission.test.ts
// fails if a release moves it, and start-up refuses to run without the gate).
import type { Server } from "@grpc/grpc-js";
import type { Http2Server, IncomingHttpHeaders, ServerHttp2Stream, OutgoingHttpHeaders } from "node:http2";
import { DETAILS_TRAILER } from "@seckill/sdk";
import { refusalStatus } from "./grpc-errors.js";
import type { Refusal } from "./refusal.js";

export interface AdmissionOptions {
  /** Gated calls in progress beyond which new ones are refused. */
  maxInFlight: number;
  /** A refused call's body is read and dropped up to this size, then answered without reading further. */
  maxMessageBytes: number;
  /** The refusal sent past the limit (an UNAVAILABLE one, with a retry hint). */
  refusal: Refusal;
  /** The paths ("/pkg.Service/Method") the limit applies to; any other call (health, reflection, streams) always goes through. */
  gatedPaths: ReadonlySet<string>;
  /** Told of every refused call, e.g. to count it. */
  onRefused?: (path: string) => void;
}

export interface AdmissionGate {
  /** Gated calls admitted and not yet closed. */
  inFlight(): number;
  /** Calls refused since the gate was installed. */
  refused(): number;
}

type StreamListener = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, ...rest: unknown[]) => void;

/** The HTTP/2 servers a bound grpc-js Server listens with. */
function http2ServersOf(server: Server): Http2Server[] {
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

/**
 * Puts the gate in front of grpc-js on every HTTP/2 server of a bound Server:
 * grpc-js's own stream listeners are called only for admitted calls.
 */
export function installAdmissionGate(server: Server, options: AdmissionOptions): AdmissionGate {
  let inFlight = 0;
  let refused = 0;
  const headers = refusalHeaders(options.refusal);
  const release = () => {
    inFlight--;
  };
  // The request is read to its end (and dropped) before the answer, so the
  // stream closes cleanly on both sides, without a reset; a body past the
  // message size limit is answered at once instead.
  const refuse = (stream: ServerHttp2Stream) => {
    let bytes = 0;
    const answer = () => {
      if (!stream.destroyed && !stream.headersSent) stream.respond(headers, { endStream: true });
    };
    stream.on("data", (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > options.maxMessageBytes) answer();
    });
    stream.once("end", answer);
  };
  for (const h2 of http2ServersOf(server)) {
    const downstream = h2.listeners("stream") as StreamListener[];
    if (downstream.length === 0) throw new Error("grpc-js registered no stream listener: the admission gate cannot be installed");
    h2.removeAllListeners("stream");
    h2.on("stream", (stream: ServerHttp2Stream, requestHeaders: IncomingHttpHeaders, ...rest: unknown[]) => {
      const path = requestHeaders[":path"];
      if (path !== undefined && options.gatedPaths.has(path)) {
        if (inFlight >= options.maxInFlight) {
          refused++;
          options.onRefused?.(path);
          refuse(stream);
          return;
        }
        inFlight++;
        stream.once("close", release);
      }
      for (const listener of downstream) listener.call(h2, stream, requestHeaders, ...rest);
    });
  }
  return { inFlight: () => inFlight, refused: () => refused };
}
