// The real edge in front of the bench's stack: the bootstrap envoy/src builds
// (buildBootstrap) for the local topology and limits — the one `npm start`
// runs, filters and all: the PlaceOrder token bucket, jwt_authn on PlaceOrder,
// the global rate limit to the gateway's RateLimitService — with its
// listener, admin and upstream clusters moved to the bench's ports, and the
// limits the figure chooses, run by tools/envoy/run.ts (the binary from
// tools/envoy/binary.ts); its access log (stdout in
// the generated config) goes to /dev/null, its own log (warnings) is kept.
import { fileURLToPath } from "node:url";
import { credentials } from "@grpc/grpc-js";
import { AccessServiceClient, OrderServiceClient, callUnary, purchaseMetadata, userMetadata } from "@seckill/sdk";
import { buildBootstrap } from "../envoy/src/bootstrap.js";
import { LOCAL_LIMITS, type EdgeLimits } from "../envoy/src/limits.js";
import { LOCAL_TOPOLOGY, type HostPort, type Topology } from "../envoy/src/topology.js";
import { decodeJwt } from "../services/common/jwt.js";
import { runEnvoy } from "../tools/envoy/run.js";
import { freePort } from "../tools/stack/ports.js";
import type { BenchStack } from "./stack.js";

const DESCRIPTOR = fileURLToPath(new URL("../envoy/seckill.pb", import.meta.url));
const READY_TIMEOUT_MS = 20_000;

const hostPort = (address: string): HostPort => {
  const colon = address.lastIndexOf(":");
  return { host: address.slice(0, colon), port: Number(address.slice(colon + 1)) };
};

export interface BenchEdge {
  /** "127.0.0.1:<port>": where the generator dials the edge. */
  address: string;
  /** Envoy's admin interface, "http://127.0.0.1:<port>". */
  admin: string;
  pid: number;
  limits: EdgeLimits;
  /** Envoy's worker threads (--concurrency; Envoy's default: one per core). */
  workers: string;
  /** A counter or gauge of Envoy's admin /stats; 0 when there is none by that name. */
  stat(name: string): Promise<number>;
  /** The last lines Envoy logged (warnings and errors). */
  logTail(): string;
  stop(): Promise<void>;
}

/**
 * Starts Envoy on the generated bootstrap, pointed at the stack; resolves once
 * /ready answers. `edit` changes the built bootstrap before it is written: for
 * measurements of a variant by hand, never in `npm run bench`.
 */
export async function startBenchEdge(
  bin: string,
  stack: BenchStack,
  limits: Partial<EdgeLimits>,
  edit?: (bootstrap: ReturnType<typeof buildBootstrap>) => unknown,
): Promise<BenchEdge> {
  const [port, adminPort] = [await freePort(), await freePort()];
  const order = hostPort(stack.orderAddress);
  const inventory = hostPort(stack.inventoryAddress);
  const topology: Topology = {
    ...LOCAL_TOPOLOGY,
    protoDescriptor: DESCRIPTOR,
    listener: { host: "127.0.0.1", port },
    admin: { host: "127.0.0.1", port: adminPort },
    // One process per service in the bench: both RPC groups of a service are the same process.
    clusters: {
      order_flash: order,
      order_default: order,
      inventory_flash: inventory,
      inventory_default: inventory,
      gateway: hostPort(stack.gatewayAddress),
      gateway_jwks: hostPort(stack.gatewayJwksAddress),
    },
    limits: { ...LOCAL_LIMITS, ...limits },
  };
  const bootstrap = buildBootstrap(topology);
  const envoy = await runEnvoy(bin, edit?.(bootstrap) ?? bootstrap, { adminPort, quietStdout: true, keepChunks: 50, readyTimeoutMs: READY_TIMEOUT_MS });
  const edge: BenchEdge = {
    address: `127.0.0.1:${port}`,
    admin: envoy.admin,
    pid: envoy.pid,
    limits: topology.limits,
    workers: "",
    stat: envoy.stat,
    logTail: () => envoy.logTail(),
    stop: envoy.stop,
  };
  try {
    const info = (await (await fetch(`${envoy.admin}/server_info`)).json()) as { command_line_options?: { concurrency?: number } };
    edge.workers = String(info.command_line_options?.concurrency ?? "?");
  } catch (error) {
    await edge.stop();
    throw error;
  }
  return edge;
}

/**
 * One buyer through the edge, as a client does it: a purchase token from the
 * gateway's AccessService, then PlaceOrder with it; retried until it is
 * accepted (Envoy fetches the JWKS just after start). Checks the gateway
 * signed with the key the generator signs with. Returns the attempts made.
 */
export async function buyThroughEdge(edge: BenchEdge, stack: BenchStack, saleId: string, timeoutMs = 20_000): Promise<number> {
  const access = new AccessServiceClient(edge.address, credentials.createInsecure());
  const orders = new OrderServiceClient(edge.address, credentials.createInsecure());
  const deadline = Date.now() + timeoutMs;
  let attempts = 0;
  try {
    for (;;) {
      attempts++;
      const user = `edge-check-${Date.now()}-${attempts}`;
      try {
        const { token } = await callUnary(access, "issuePurchaseToken", { saleId, challengeId: "", challengeAnswer: "" }, { metadata: userMetadata(user), deadlineMs: 5000 });
        const kid = decodeJwt(token).header.kid;
        if (kid !== stack.signer.kid) throw new Error(`the gateway signed with key ${kid}, the generator with ${stack.signer.kid}`);
        await callUnary(
          orders,
          "placeOrder",
          { saleId, quantity: 1, requestId: `${user}-r`, purchaseToken: "", retry: false },
          { metadata: purchaseMetadata(user, saleId, token), deadlineMs: 5000 },
        );
        return attempts;
      } catch (error) {
        if ((error as Error).message.includes("the gateway signed")) throw error;
        if (Date.now() > deadline) throw new Error(`no purchase through the edge within ${timeoutMs / 1000} s: ${(error as Error).message}\n${edge.logTail()}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  } finally {
    access.close();
    orders.close();
  }
}
