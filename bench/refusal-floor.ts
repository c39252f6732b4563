// The floor under figure e: a bare node:http2 server (no grpc-js, no
// handlers) that reads each call's request to its end and answers the very
// trailers-only response the services' admission gate sends past the
// in-flight limit (UNAVAILABLE, OVERLOADED, retry hint). What it costs per
// call, and the p99 it keeps at an offered rate, is a reference for what
// refusing that rate costs a Node.js process through node:http2 on the same
// machine, before a service serves any admitted call.
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { refusalHeaders } from "../services/common/admission.js";
import { SHED } from "../services/common/grpc-server.js";

export interface RefusalFloor {
  address: string;
  stop(): Promise<void>;
}

export async function startRefusalFloor(address: string, maxConcurrentStreams: number): Promise<RefusalFloor> {
  const headers = refusalHeaders(SHED);
  const server = http2.createServer({ settings: { maxConcurrentStreams } });
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  server.on("stream", (stream) => {
    stream.resume();
    stream.once("end", () => {
      if (!stream.destroyed && !stream.headersSent) stream.respond(headers, { endStream: true });
    });
  });
  const colon = address.lastIndexOf(":");
  const host = address.slice(0, colon);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(Number(address.slice(colon + 1)), host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    address: `${host}:${(server.address() as AddressInfo).port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const session of sessions) session.destroy();
      }),
  };
}
