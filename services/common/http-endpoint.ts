// One resource over plain HTTP on host:port (port 0: one the OS chooses), next
// to a service's gRPC port: GET and HEAD of its path are answered, any other
// path is 404 and any other method 405. GET /metrics (metrics.ts) and the
// gateway's JWKS (gateway/access/jwks-server.ts) are served this way.
import { createServer, type IncomingMessage, type ServerOptions, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface HttpResource {
  path: string;
  /** Body of the 404 answered at any other path. */
  notFound: string;
  /** Answers a GET or HEAD of path. */
  get(req: IncomingMessage, res: ServerResponse): void;
  /** Told of the server's errors once it listens (e.g. EMFILE on accept); they never end the process. */
  onError?(error: Error): void;
}

export interface HttpEndpoint {
  /** host:port actually bound (the port the OS chose for port 0). */
  readonly address: string;
  /**
   * Stops listening and ends idle connections; resolves when every connection
   * is gone. Requests in progress finish first, or are cut off with abort.
   */
  close(abort?: boolean): Promise<void>;
}

/** Listens on `address` (host:port, an IPv6 host in brackets); rejects with the listen error. */
export async function serveHttp(address: string, resource: HttpResource, options: ServerOptions = {}): Promise<HttpEndpoint> {
  const split = address.lastIndexOf(":");
  const host = address.slice(0, split).replace(/^\[(.*)\]$/, "$1");
  const port = Number(address.slice(split + 1));
  const server = createServer(options, (req, res) => {
    const path = (req.url ?? "").split("?")[0];
    if (path !== resource.path) {
      res.writeHead(404, { "content-type": "text/plain" }).end(resource.notFound);
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("method not allowed\n");
      return;
    }
    resource.get(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  // Errors after listening (e.g. EMFILE on accept) are reported, not thrown.
  server.on("error", (error) => resource.onError?.(error));
  const bound = (server.address() as AddressInfo).port;
  return {
    address: `${host.includes(":") ? `[${host}]` : host}:${bound}`,
    close(abort = false) {
      // close() ends the idle connections itself.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      if (abort) server.closeAllConnections();
      return closed;
    },
  };
}
