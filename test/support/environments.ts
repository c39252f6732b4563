// The two environments the purchase, lifecycle and Redis-loss cases run on,
// one after the other in the same file, a describe block each: the
// single-node one (the one Redis and NATS server the whole run shares) and a
// clustered one (a Redis Cluster and a NATS cluster of the file's own,
// clusters.ts), so that the same cases check both without being copied.
import { Redis } from "ioredis";
import { saleKeys } from "../../services/inventory/stock-store.js";
import { CLUSTERS_START_MS, startClusters, type Clusters } from "./clusters.js";
import { startTestStack, type TestStack, type TestStackOptions } from "./stack.js";

export interface StackEnvironment {
  /** What the describe block says it runs on. */
  name: string;
  /** Starts what the environment needs (the clusters, once), then a test stack on it, which stop() stops. */
  startStack(overrides?: Record<string, string>, options?: TestStackOptions): Promise<TestStack>;
  /**
   * What losing the Redis server that holds a sale does to the stack: the
   * sale's keys and every other key beside them gone. On one server, every
   * key of the stack's namespace (the server is shared with other files); on
   * the cluster, everything on the master of the sale's slot (FLUSHALL,
   * which its replica follows), as when that master restarts empty.
   */
  loseRedisServerOf(stack: TestStack, saleId: string): Promise<void>;
  /** Stops the stacks it started, then what they ran on. */
  stop(): Promise<void>;
}

/** For the beforeAll that starts a stack: on the clustered environment it starts the clusters first. */
export const STACK_START_MS = CLUSTERS_START_MS + 30_000;

/** Remembers the stacks an environment started, to stop them first. */
function startedStacks() {
  const stacks: TestStack[] = [];
  return {
    async start(overrides: Record<string, string>, options: TestStackOptions): Promise<TestStack> {
      const stack = await startTestStack(overrides, options);
      stacks.push(stack);
      return stack;
    },
    async stop(): Promise<void> {
      await Promise.all(stacks.splice(0).map((stack) => stack.stop()));
    },
  };
}

export function singleNode(): StackEnvironment {
  const stacks = startedStacks();
  return {
    name: "the single-node stack",
    startStack: (overrides = {}, options = {}) => stacks.start(overrides, options),
    async loseRedisServerOf(stack) {
      const keys = await stack.redis.keys(`${stack.config.namespace}:*`);
      if (keys.length > 0) await stack.redis.del(...keys);
    },
    stop: stacks.stop,
  };
}

export function clustered(): StackEnvironment {
  const stacks = startedStacks();
  let clusters: Clusters | undefined;
  return {
    name: "the clustered stack (Redis Cluster, NATS cluster)",
    async startStack(overrides = {}, options = {}) {
      clusters ??= await startClusters();
      return stacks.start({ ...clusters.overrides, ...overrides }, options);
    },
    async loseRedisServerOf(stack, saleId) {
      const cluster = clusters!.redis!;
      const [host, port] = (await cluster.masterOf(await cluster.slotOf(saleKeys(stack.config.namespace, saleId).rules))).split(":");
      const master = new Redis({ host, port: Number(port) });
      try {
        await master.flushall();
      } finally {
        master.disconnect();
      }
    },
    async stop() {
      await stacks.stop();
      await clusters?.stop();
      clusters = undefined;
    },
  };
}

/** Both environments, for a describe block each; the cases run on each in turn. */
export const stackEnvironments = (): StackEnvironment[] => [singleNode(), clustered()];
