// Runs a simulated flash sale against the backend: creates the sale, waits for
// the opening by the server's clock, releases the crowd with bounded
// concurrency (each click gets a purchase token from the gateway, then
// places the order with it), lets winners watch their orders, waits for
// Postgres, lists the winners' orders back and summarizes.
import { randomBytes } from "node:crypto";
import { ReleasePolicy, SalePhase, callUnary } from "@seckill/sdk";
import { CliError, type Backend } from "../backend.js";
import { connectionCause } from "../edge.js";
import { formatDuration } from "../duration.js";
import { checkOptions, planUsers, seededRandom, type SimulationOptions } from "./plan.js";
import { mapBounded, semaphore } from "./pool.js";
import { startProgress, type ProgressStream } from "./progress.js";
import { buyerPort, ordersOf, soldInPostgres, watchUntilCreated } from "./sdk-port.js";
import { toldSoldOut, type CallRecord, type ClickResult, type EdgeRefusalRecord, type PersistSample, type WatchResult } from "./stats.js";
import { summarize, type Summary, type Verification } from "./summary.js";
import { runBuyer, type Clock } from "./user.js";

export interface SimulationIo {
  /** One line of narration on stderr ("created sale …"). */
  log(line: string): void;
  /** Where the progress bar and countdown go. */
  progress: ProgressStream;
  quiet?: boolean;
}

export interface SimulationResult {
  summary: Summary;
  calls: CallRecord[];
  clicks: ClickResult[];
  persistSamples: PersistSample[];
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));
const PERSIST_POLL_MS = 100;
const PERSIST_STABLE_MS = 3000;

export async function simulate(backend: Backend, o: SimulationOptions, io: SimulationIo): Promise<SimulationResult> {
  checkOptions(o);
  const runStarted = performance.now();
  const deadlineMs = o.deadlineMs;

  const now = Date.now();
  const { sale } = await callUnary(
    backend.sales,
    "createSale",
    {
      requestId: `sim-${o.seed.toString(16)}-${randomBytes(6).toString("hex")}`,
      name: o.name ?? `Simulated flash sale (seed ${o.seed})`,
      totalStock: o.stock,
      priceMinor: 1999,
      currency: "EUR",
      startsAt: new Date(now + o.startsInMs),
      endsAt: new Date(now + o.startsInMs + Math.max(600_000, 10 * (o.rampMs + o.persistTimeoutMs))),
      perUserLimit: o.perUserLimit,
      paymentWindowSeconds: 900,
      releasePolicy: ReleasePolicy.RELEASE_POLICY_RESTORE_ALLOWANCE,
      accessRules: undefined,
    },
    { deadlineMs },
  );
  const saleId = sale!.saleId;
  if (sale!.accessRules?.challengeRequired) {
    throw new CliError(`sale ${saleId} requires a challenge before a purchase token, and simulated buyers cannot answer one: simulate needs a sale without a challenge`);
  }
  io.log(`created sale ${saleId}: ${o.stock} units, limit ${o.perUserLimit} per user, ${o.users} users waiting (seed ${o.seed})`);
  const throughEdge = backend.buyer.route === "edge";
  io.log(
    throughEdge
      ? `buyers go through the edge at ${backend.options.edge}; the sale was created, and the result is checked, at the services directly`
      : `buyers call the services directly (order ${backend.options.order}, gateway ${backend.options.gateway}, inventory ${backend.options.inventory})`,
  );

  const waitStarted = performance.now();
  const openAt = await waitForOpening(backend, saleId, deadlineMs, io);
  const waitedForOpenMs = performance.now() - waitStarted;
  const clock: Clock = { now: () => performance.now() - openAt, sleep };
  io.log(`sale open (by the server's clock): releasing ${o.users} users over ${formatDuration(o.rampMs)}, ${o.concurrency} at a time`);

  // GetSale.sold over time, from the opening until Postgres has settled.
  const persistSamples: PersistSample[] = [];
  const persist = { buyingDone: false, doneAt: 0, expected: 0, waitForStable: false };
  const poller = (async (): Promise<"equal" | "stable" | "timeout"> => {
    let lastChange = clock.now();
    let last = -1;
    for (;;) {
      const at = clock.now();
      const read = await soldInPostgres(backend, saleId, deadlineMs).catch(() => undefined);
      if (read) {
        // Stamped when the answer arrived: by then Postgres held at least this much.
        persistSamples.push({ atMs: clock.now(), sold: read.sold });
        if (read.sold !== last) {
          last = read.sold;
          lastChange = at;
        }
      }
      if (persist.buyingDone) {
        if (!persist.waitForStable && last === persist.expected) return "equal";
        if (at - lastChange >= PERSIST_STABLE_MS && at - persist.doneAt >= PERSIST_STABLE_MS) return "stable";
        if (at - persist.doneAt >= o.persistTimeoutMs) return "timeout";
      }
      await sleep(PERSIST_POLL_MS - (clock.now() - at));
    }
  })();

  const plan = planUsers(o);
  const random = seededRandom(o.seed ^ 0x5eed);
  const port = buyerPort(backend, saleId, deadlineMs);
  const calls: CallRecord[] = [];
  const clicks: ClickResult[] = [];
  const edgeRefusals: EdgeRefusalRecord[] = [];
  const refusedAtEdge = (call: EdgeRefusalRecord["call"], kind: EdgeRefusalRecord["kind"], message: string) =>
    void edgeRefusals.push(kind === "connection" ? { call, kind, cause: connectionCause(message) } : { call, kind });
  const watches: Promise<WatchResult>[] = [];
  const counts = { done: 0, total: o.users, successes: 0, soldOut: 0, calls: 0 };
  let statusFailures = 0;
  const buying = semaphore(o.concurrency);
  const watching = semaphore(o.concurrency);
  const progress = startProgress(io.progress, () => counts, { quiet: io.quiet });

  const record = (call: CallRecord) => {
    calls.push(call);
    counts.calls++;
  };
  const tasks: Promise<void>[] = [];
  try {
    for (const user of plan) {
      const ahead = user.arrivalMs - clock.now();
      if (ahead >= 1) await sleep(ahead);
      await buying.acquire();
      tasks.push(
        runBuyer(user, port, { quantity: o.quantity, maxAttempts: o.maxAttempts, throughEdge }, clock, random, record, refusedAtEdge)
          .then(({ clicks: mine, statusFailed }) => {
            if (statusFailed) statusFailures++;
            for (const click of mine) {
              clicks.push(click);
              if (click.outcome.kind === "won") {
                counts.successes++;
                const { orderId } = click.outcome;
                const answeredAt = performance.now();
                watches.push(
                  watching.run(() =>
                    watchUntilCreated(backend, user.userId, orderId, o.watchTimeoutMs, deadlineMs, answeredAt, undefined, throughEdge ? refusedAtEdge : undefined),
                  ),
                );
              } else if (toldSoldOut(click.outcome)) counts.soldOut++;
            }
            counts.done++;
          })
          .finally(() => buying.release()),
      );
    }
    await Promise.all(tasks);
  } finally {
    progress.stop();
  }
  const wins = clicks.filter((c) => c.outcome.kind === "won");
  const unitsWon = wins.reduce((s, c) => s + (c.outcome.kind === "won" ? c.outcome.quantity : 0), 0);
  io.log(`buying over: ${wins.length} orders won; ${watches.length ? "winners watching their orders, " : ""}waiting for Postgres`);

  Object.assign(persist, {
    expected: unitsWon,
    // A click that gave up may still have reserved: wait for the count to settle instead of trusting our tally.
    waitForStable: clicks.some((c) => c.outcome.kind === "error"),
    doneAt: clock.now(),
    buyingDone: true,
  });
  const [watchResults, settled] = await Promise.all([Promise.all(watches), poller]);

  const verification = await verify(backend, saleId, clicks, o.verifyUsers, deadlineMs);
  const finalSold = persistSamples.at(-1)?.sold ?? 0;
  const summary = summarize({
    options: o,
    sale: { saleId, totalStock: sale!.totalStock, perUserLimit: sale!.perUserLimit },
    calls,
    clicks,
    statusCalls: plan.length,
    statusFailures,
    edge: throughEdge ? { address: backend.options.edge!, refusals: edgeRefusals } : undefined,
    watches: watchResults,
    persist: { samples: persistSamples, finalSold, settled },
    verification,
    waitedForOpenMs,
    totalMs: performance.now() - runStarted,
  });
  return { summary, calls, clicks, persistSamples };
}

/**
 * Resolves at the local monotonic instant (performance.now()) the sale opens,
 * judged by GetSaleStatus's server_time and the round trip, never by comparing
 * this machine's clock with the server's.
 */
async function waitForOpening(backend: Backend, saleId: string, deadlineMs: number, io: SimulationIo): Promise<number> {
  const tty = io.progress.isTTY === true && !io.quiet;
  let lastLine = -Infinity;
  for (;;) {
    const sent = performance.now();
    const st = await callUnary(backend.sales, "getSaleStatus", { saleId }, { deadlineMs });
    const received = performance.now();
    if (st.phase === SalePhase.SALE_PHASE_ENDED) throw new CliError(`sale ${saleId} ended before it opened (closed by an operator?)`);
    if (st.phase !== SalePhase.SALE_PHASE_NOT_STARTED) {
      if (tty) io.progress.write("\r\x1b[2K");
      return received;
    }
    // The server read its clock about half a round trip before we got the answer.
    const serverNow = st.serverTime!.getTime() + (received - sent) / 2;
    const remaining = st.startsAt!.getTime() - serverNow;
    if (!io.quiet) {
      if (tty) io.progress.write(`\r\x1b[2Ksale opens in ${formatDuration(Math.max(0, remaining))}`);
      else if (received - lastLine >= 1000) {
        lastLine = received;
        io.log(`sale opens in ${formatDuration(Math.max(0, remaining))}`);
      }
    }
    if (remaining <= 0) {
      await sleep(10);
      continue;
    }
    if (remaining <= 1000) {
      await sleep(remaining);
      // The opening instant on our monotonic clock; confirmed by the next status read.
      const opened = received + remaining;
      const check = await callUnary(backend.sales, "getSaleStatus", { saleId }, { deadlineMs });
      if (check.phase !== SalePhase.SALE_PHASE_NOT_STARTED) {
        if (tty) io.progress.write("\r\x1b[2K");
        return opened;
      }
      continue;
    }
    await sleep(Math.min(1000, remaining - 500));
  }
}

/** Lists the orders of (at most `limit`) winning users back through ListOrders. */
async function verify(backend: Backend, saleId: string, clicks: ClickResult[], limit: number, deadlineMs: number): Promise<Verification> {
  const winners = [...new Set(clicks.filter((c) => c.outcome.kind === "won").map((c) => c.userId))];
  const checked = winners.slice(0, limit);
  const unitsPerUser = new Map<string, number>();
  const orderIds = new Set<string>();
  let failedUsers = 0;
  await mapBounded(checked, 16, async (userId) => {
    try {
      const orders = await ordersOf(backend, userId, saleId, deadlineMs);
      unitsPerUser.set(
        userId,
        orders.reduce((s, order) => s + order.quantity, 0),
      );
      for (const order of orders) orderIds.add(order.orderId);
    } catch {
      failedUsers++;
    }
  });
  return { usersChecked: checked.length, winners: winners.length, unitsPerUser, orderIds, failedUsers };
}
