// What tests, the benchmark and the fault campaign share to run sales on an
// isolated namespace: a valid CreateSale request, waiting for a condition or
// for the writer to drain, and removing a run's stream and Redis keys.
import { randomBytes } from "node:crypto";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { createRedis, onEveryMaster } from "../../services/common/redis.js";
import { ReleasePolicy, type CreateSaleRequest } from "@seckill/sdk";
import type { Config } from "../../services/common/config.js";
import { connectNats, deadLetterNames, eventNames } from "../../services/common/event-bus.js";

/** Removes a run's stream and Redis keys. */
export async function cleanNamespace(config: Config): Promise<void> {
  const nc = await connectNats(config.natsUrl, "test-cleanup");
  try {
    const jsm = await jetstreamManager(nc);
    for (const stream of [eventNames(config.namespace).stream, deadLetterNames(config.namespace).stream]) {
      await jsm.streams.delete(stream).catch(() => undefined);
    }
  } finally {
    await nc.close();
  }
  const redis = createRedis(config);
  try {
    await redis.connect();
    // SCAN sees one node's keys: in a cluster, every master is scanned.
    await onEveryMaster(redis, async (node) => {
      let cursor = "0";
      do {
        const [next, keys] = await node.scan(cursor, "MATCH", `${config.namespace}:*`, "COUNT", 1000);
        // One key at a time: the keys of one node may lie on several slots.
        await Promise.all(keys.map((key) => node.del(key)));
        cursor = next;
      } while (cursor !== "0");
    });
  } finally {
    redis.disconnect();
  }
}

/** A valid CreateSale request for an open sale (started a second ago, ends in an hour). */
export function saleRequest(overrides: Partial<CreateSaleRequest> = {}): CreateSaleRequest {
  const now = Date.now();
  return {
    requestId: `create-${randomBytes(6).toString("hex")}`,
    name: "Test sale",
    totalStock: 10,
    priceMinor: 1999,
    currency: "EUR",
    startsAt: new Date(now - 1000),
    endsAt: new Date(now + 3600_000),
    perUserLimit: 1,
    paymentWindowSeconds: 900,
    releasePolicy: ReleasePolicy.RELEASE_POLICY_UNSPECIFIED,
    accessRules: undefined,
    ...overrides,
  };
}

/** Waits until the order writer has acked or terminated every reservation event up to seq. */
export async function writerDrained(jsm: JetStreamManager, namespace: string, seq: number): Promise<void> {
  const names = eventNames(namespace);
  await eventually(
    async () => {
      const info = await jsm.consumers.info(names.stream, names.writerConsumer);
      return info.ack_floor.stream_seq >= seq && info.num_ack_pending === 0 && info.num_pending === 0;
    },
    15_000,
    `the writer to finish the events up to seq ${seq}`,
  );
}

/** Polls every intervalMs until check() returns true, or fails after timeoutMs. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 15_000, what = "condition", intervalMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
