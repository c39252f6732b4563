// grpc.health.v1 from the outside: ask a server whether it is SERVING, and
// wait until it is.
import net from "node:net";
import * as grpc from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";

const HealthClient = grpc.makeClientConstructor(healthService as unknown as grpc.ServiceDefinition, "grpc.health.v1.Health");

/** The address a client on this machine dials for a listen address: 0.0.0.0 and [::] become loopback. */
export function dialAddress(listen: string): string {
  return listen.replace(/^0\.0\.0\.0:/, "127.0.0.1:").replace(/^\[::\]:/, "[::1]:");
}

/** The status reported for `service` ("" is the whole server): "SERVING", "NOT_SERVING", ... */
export async function checkHealth(address: string, service = "", timeoutMs = 1000): Promise<string> {
  const client = new HealthClient(address, grpc.credentials.createInsecure());
  try {
    return await new Promise<string>((resolve, reject) =>
      client.Check({ service }, { deadline: Date.now() + timeoutMs }, (error: grpc.ServiceError | null, reply?: { status: string }) =>
        error ? reject(error) : resolve(reply!.status),
      ),
    );
  } finally {
    client.close();
  }
}

/**
 * Polls until the server at `address` reports SERVING (resolves true), or
 * `keepWaiting()` turns false (resolves false); throws after timeoutMs.
 */
export async function waitServing(address: string, timeoutMs: number, keepWaiting: () => boolean): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer";
  while (keepWaiting()) {
    try {
      last = await checkHealth(address);
      if (last === "SERVING") return true;
    } catch (error) {
      last = (error as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`not SERVING on ${address} after ${timeoutMs / 1000} s (last: ${last})`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

/** True if something accepts TCP connections at host:port. */
export function isListening(address: string): Promise<boolean> {
  const at = address.lastIndexOf(":");
  const host = address.slice(0, at).replace(/^\[(.*)\]$/, "$1");
  return new Promise((resolve) => {
    const socket = net.connect({ host, port: Number(address.slice(at + 1)) });
    const done = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(500, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/** Polls until something accepts connections at `address` (resolves true), or `keepWaiting()` turns false (false). */
export async function waitListening(address: string, keepWaiting: () => boolean): Promise<boolean> {
  while (keepWaiting()) {
    if (await isListening(address)) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}
