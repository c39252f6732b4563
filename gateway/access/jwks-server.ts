// The gateway's public keys as a JWKS over plain HTTP (GATEWAY_JWKS_ADDR,
// `GET /.well-known/jwks.json`): what Envoy's jwt_authn (remote_jwks) and the
// order service fetch to verify purchase tokens. Public data, cacheable for
// CACHE_SECONDS; the order service refetches at once on an unknown kid anyway.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { PublicJwk } from "../../services/common/jwt.js";

export const JWKS_PATH = "/.well-known/jwks.json";
export const CACHE_SECONDS = 300;

export interface JwksServer {
  /** host:port it listens on (the real port when configured with 0). */
  address: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createJwksServer(listen: string, jwks: () => { keys: PublicJwk[] }): JwksServer {
  const colon = listen.lastIndexOf(":");
  const host = listen.slice(0, colon).replace(/^\[|\]$/g, "");
  const port = Number(listen.slice(colon + 1));
  let server: Server | undefined;
  const self: JwksServer = {
    address: listen,
    async start() {
      const s = createServer((req, res) => {
        const path = (req.url ?? "").split("?")[0];
        if (path !== JWKS_PATH) {
          res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
          return;
        }
        if (req.method !== "GET" && req.method !== "HEAD") {
          res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("method not allowed\n");
          return;
        }
        const body = JSON.stringify(jwks());
        res.writeHead(200, {
          "content-type": "application/json",
          "cache-control": `public, max-age=${CACHE_SECONDS}`,
          "content-length": Buffer.byteLength(body),
        });
        res.end(req.method === "HEAD" ? undefined : body);
      });
      s.headersTimeout = 5000;
      s.requestTimeout = 10_000;
      s.keepAliveTimeout = 5000;
      await new Promise<void>((resolve, reject) => {
        s.once("error", reject);
        s.listen(port, host, () => {
          s.off("error", reject);
          resolve();
        });
      });
      server = s;
      const bound = (s.address() as AddressInfo).port;
      self.address = `${host.includes(":") ? `[${host}]` : host}:${bound}`;
    },
    async stop() {
      const s = server;
      server = undefined;
      if (!s) return;
      s.closeIdleConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    },
  };
  return self;
}
