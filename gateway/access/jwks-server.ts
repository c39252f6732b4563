// The gateway's public keys as a JWKS over plain HTTP (GATEWAY_JWKS_ADDR,
// `GET /.well-known/jwks.json`): what Envoy's jwt_authn (remote_jwks) and the
// order service fetch to verify purchase tokens. Public data, cacheable for
// CACHE_SECONDS; the order service refetches at once on an unknown kid anyway.
import { serveHttp, type HttpEndpoint } from "../../services/common/http-endpoint.js";
import type { PublicJwk } from "../../services/common/jwt.js";
import type { Logger } from "../../services/common/log.js";

export const JWKS_PATH = "/.well-known/jwks.json";
export const CACHE_SECONDS = 300;

export interface JwksServer {
  /** host:port it listens on (the real port when configured with 0). */
  address: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createJwksServer(listen: string, jwks: () => { keys: PublicJwk[] }, log?: Logger): JwksServer {
  let endpoint: HttpEndpoint | undefined;
  const self: JwksServer = {
    address: listen,
    async start() {
      endpoint = await serveHttp(
        listen,
        {
          path: JWKS_PATH,
          notFound: "not found\n",
          get(req, res) {
            const body = JSON.stringify(jwks());
            res.writeHead(200, {
              "content-type": "application/json",
              "cache-control": `public, max-age=${CACHE_SECONDS}`,
              "content-length": Buffer.byteLength(body),
            });
            res.end(req.method === "HEAD" ? undefined : body);
          },
          onError: (error) => log?.warn("jwks endpoint error", { err: error.message }),
        },
        { headersTimeout: 5000, requestTimeout: 10_000, keepAliveTimeout: 5000 },
      );
      self.address = endpoint.address;
    },
    async stop() {
      const e = endpoint;
      endpoint = undefined;
      await e?.close();
    },
  };
  return self;
}
