// The fault campaign's command-line options, shared by `npm run chaos` and `seckill chaos`.
import { parseArgs } from "node:util";
import type { CampaignOptions } from "./campaign.js";
import { FAULT_KINDS, type FaultKind } from "./nemesis.js";
import { newSeed } from "./prng.js";

export const USAGE = `usage: npm run chaos -- [options]      (or: seckill chaos [options])

A fault campaign against a stack of its own (private Redis, NATS and Postgres,
every service a process that can be killed, fault proxies on the links):
each run fresh sales one after the other, each with a crowd ten times its
stock, seeded faults, then heal, drain, and check that nothing was lost,
doubled, oversold or stuck.

  --seed <n>            campaign seed, 0..4294967295 (default: random; always printed)
  --runs <n>            runs (default 3)
  --from-run <n>        start at run n of the campaign (replays a run alone: --from-run 7 --runs 7)
  --sales <n>           sales per run, opened one after the other (default 4)
  --users <n>           buyers per sale, two clicks each (default 200)
  --stock <n>           units per sale (default 20)
  --duration <ms>       run length: the sales' arrivals, and the faults (default 8000)
  --faults <kinds>      comma-separated: ${FAULT_KINDS.join(",")} (default all)
  --max-concurrent <n>  faults active at once (default 1)
  --fault-ms <min-max>  how long a fault lasts (default 300-2500)
  --settle <ms>         after healing, the bound on draining and settling (default 45000)
  --nats-cluster        NATS as a three-node JetStream cluster with three replicas (tools/stack/nats-cluster.ts),
                        the services reaching each node through a fault proxy: kill-nats-leader and
                        cut-nats-node need it, and kill/pause of "nats" and the links to NATS are left out
  --redis-cluster       Redis as a Redis Cluster of three masters with a replica each (tools/stack/redis-cluster.ts):
                        kill-redis-master needs it, and kill/pause of "redis" and the links to Redis are left out
  --json                print the whole result as JSON instead of the table
  --help`;

function integer(name: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name}: expected an integer in ${min}..${max}, got "${value}"`);
  return n;
}

function range(name: string, value: string): [number, number] {
  const m = /^(\d+)-(\d+)$/.exec(value);
  const [min, max] = m ? [Number(m[1]), Number(m[2])] : [NaN, NaN];
  if (!m || min < 1 || min > max || max > 600_000) throw new UsageError(`--${name}: expected <min>-<max> in ms (1 <= min <= max <= 600000), got "${value}"`);
  return [min, max];
}

export class UsageError extends Error {}

export function parseCampaignArgs(argv: string[]): Omit<CampaignOptions, "log"> | "help" {
  const { values } = parseArgs({
    args: argv,
    options: {
      seed: { type: "string" },
      runs: { type: "string" },
      "from-run": { type: "string" },
      sales: { type: "string" },
      users: { type: "string" },
      stock: { type: "string" },
      duration: { type: "string" },
      faults: { type: "string" },
      "max-concurrent": { type: "string" },
      "fault-ms": { type: "string" },
      settle: { type: "string" },
      "nats-cluster": { type: "boolean" },
      "redis-cluster": { type: "boolean" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) return "help";
  const kinds = (values.faults ?? FAULT_KINDS.join(","))
    .split(",")
    .map((k) => k.trim())
    .filter(Boolean);
  for (const k of kinds) {
    if (!(FAULT_KINDS as readonly string[]).includes(k)) throw new UsageError(`--faults: unknown fault "${k}" (known: ${FAULT_KINDS.join(", ")})`);
  }
  return {
    seed: integer("seed", values.seed, newSeed(), 0, 2 ** 32 - 1),
    runs: integer("runs", values.runs, 3, 1, 10_000),
    fromRun: integer("from-run", values["from-run"], 1, 1, 10_000),
    sales: integer("sales", values.sales, 4, 1, 1000),
    users: integer("users", values.users, 200, 1, 100_000),
    stock: integer("stock", values.stock, 20, 1, 1_000_000),
    durationMs: integer("duration", values.duration, 8000, 500, 600_000),
    kinds: kinds as FaultKind[],
    maxConcurrent: integer("max-concurrent", values["max-concurrent"], 1, 1, 10),
    settleTimeoutMs: integer("settle", values.settle, 45_000, 1000, 600_000),
    faultMs: values["fault-ms"] === undefined ? undefined : range("fault-ms", values["fault-ms"]),
    natsCluster: values["nats-cluster"] === true,
    redisCluster: values["redis-cluster"] === true,
  };
}
