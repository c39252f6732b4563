// The gateway's AccessService and JWKS endpoint for one test file, on a test
// stack: its own key directory, the stack's database and Redis namespace, a
// clock the test can move, and order services verifying its tokens.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentials } from "@grpc/grpc-js";
import { AccessServiceClient, OrderServiceClient } from "@seckill/sdk";
import type { Config } from "../../services/common/config.js";
import { quietLogger } from "../../services/common/log.js";
import { createRedis } from "../../services/common/redis.js";
import { serve, type ServingApp } from "../../services/common/serve.js";
import { startOrder, type OrderApp } from "../../services/order/app.js";
import { createAccess, type Access } from "../../gateway/access/index.js";
import type { TestStack } from "./stack.js";

export interface AccessFixture {
  access: Access;
  app: ServingApp;
  client: AccessServiceClient;
  keysDir: string;
  jwksUrl: string;
  /** Moves the gateway's clock (ms added to the real time). */
  skew(ms: number): void;
  /** An order service of the stack that verifies purchase tokens against this gateway's JWKS (or jwksUrl). */
  startOrder(overrides?: Partial<Config>): Promise<{ app: OrderApp; client: OrderServiceClient; stop(): Promise<void> }>;
  stop(): Promise<void>;
}

export async function startAccessFixture(stack: TestStack, overrides: Partial<Config> = {}): Promise<AccessFixture> {
  const keysDir = await mkdtemp(join(tmpdir(), "seckill-keys-"));
  const config: Config = { ...stack.config, purchaseTokenKeysDir: keysDir, gatewayJwksAddr: "127.0.0.1:0", ...overrides };
  const log = quietLogger();
  const redis = createRedis(config.redisUrl);
  await redis.connect();
  let skewMs = 0;
  const access = await createAccess({ db: stack.db, redis, config, log, now: () => new Date(Date.now() + skewMs) });
  await access.jwks.start();
  const app = await serve({
    config,
    log,
    address: "127.0.0.1:0",
    services: [access.registration],
    dependencies: { redis },
    close: () => redis.quit(),
  });
  const client = new AccessServiceClient(app.address, credentials.createInsecure());
  const jwksUrl = `http://${access.jwks.address}/.well-known/jwks.json`;
  return {
    access,
    app,
    client,
    keysDir,
    jwksUrl,
    skew: (ms) => {
      skewMs = ms;
    },
    async startOrder(orderOverrides = {}) {
      const orderApp = await startOrder({ ...stack.config, orderAddr: "127.0.0.1:0", purchaseTokenJwksUrl: jwksUrl, ...orderOverrides }, log);
      const orderClient = new OrderServiceClient(orderApp.address, credentials.createInsecure());
      return {
        app: orderApp,
        client: orderClient,
        async stop() {
          orderClient.close();
          await orderApp.stop();
        },
      };
    },
    async stop() {
      client.close();
      await Promise.allSettled([app.stop(), access.jwks.stop()]);
      await rm(keysDir, { recursive: true, force: true });
    },
  };
}
