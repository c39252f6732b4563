// `seckill sale create|list|show|open|close|reconcile`: operating sales through the
// SaleService of the inventory service.
import { randomBytes } from "node:crypto";
import { Command, Option } from "commander";
import { callUnary, ReleasePolicy, SalePhase, type CreateSaleRequest, type GetSaleStatusResponse, type ReconcileSaleResponse, type Sale } from "@seckill/sdk";
import { CliError } from "./backend.js";
import type { CommandContext } from "./context.js";
import { formatDuration } from "./duration.js";
import { formatMoney, formatTime, json, keyValues, phaseName, releasePolicyName, saleJson, table, truncate } from "./format.js";
import { duration, integer, isoTime } from "./options.js";

export interface SaleCreateOptions {
  name?: string;
  stock: number;
  price: number;
  currency: string;
  startsIn?: number;
  startsAt?: Date;
  duration?: number;
  endsAt?: Date;
  perUserLimit: number;
  paymentWindow: number;
  /** What a cancelled or expired order does to its buyer's allowance; default restore. */
  releasePolicy?: "restore" | "keep";
  requestId?: string;
}

/** The CreateSale request for the command's options, times relative to `now`. */
export function createSaleRequest(o: SaleCreateOptions, now: Date): CreateSaleRequest {
  const startsAt = o.startsAt ?? new Date(now.getTime() + (o.startsIn ?? 0));
  const endsAt = o.endsAt ?? new Date(startsAt.getTime() + (o.duration ?? 3_600_000));
  if (endsAt <= startsAt) throw new CliError("the sale must end after it starts (check --ends-at / --duration)");
  if (o.paymentWindow % 1000 !== 0) throw new CliError("--payment-window must be whole seconds");
  return {
    requestId: o.requestId ?? `cli-${randomBytes(8).toString("hex")}`,
    name: o.name ?? `Flash sale ${formatTime(startsAt)}`,
    totalStock: o.stock,
    priceMinor: o.price,
    currency: o.currency.toUpperCase(),
    startsAt,
    endsAt,
    perUserLimit: o.perUserLimit,
    paymentWindowSeconds: o.paymentWindow / 1000,
    releasePolicy: o.releasePolicy === "keep" ? ReleasePolicy.RELEASE_POLICY_KEEP_ALLOWANCE : ReleasePolicy.RELEASE_POLICY_RESTORE_ALLOWANCE,
    accessRules: undefined,
  };
}

/** "opens in 4.2 s", "closes in 59m 3s", "ended 2m 1s ago": from the server's clock, not ours. */
export function countdown(s: Pick<GetSaleStatusResponse, "phase" | "serverTime" | "startsAt" | "endsAt">): string {
  const now = s.serverTime?.getTime();
  if (now === undefined) return "";
  if (s.phase === SalePhase.SALE_PHASE_NOT_STARTED && s.startsAt) return `opens in ${formatDuration(s.startsAt.getTime() - now)}`;
  if (s.phase === SalePhase.SALE_PHASE_ENDED && s.endsAt) return `ended ${formatDuration(Math.max(0, now - s.endsAt.getTime()))} ago`;
  if (s.endsAt) return `closes in ${formatDuration(s.endsAt.getTime() - now)}`;
  return "";
}

function saleRows(sale: Sale): [string, string | number][] {
  return [
    ["sale", sale.saleId],
    ["name", sale.name],
    ["price", formatMoney(sale.priceMinor, sale.currency)],
    ["stock", sale.totalStock],
    ["sold (in Postgres)", sale.sold],
    ["per-user limit", sale.perUserLimit],
    ["release policy", `${releasePolicyName(sale.releasePolicy)} (${releasePolicyEffect(sale.releasePolicy)})`],
    ["payment window", formatDuration(sale.paymentWindowSeconds * 1000)],
    ["starts at", formatTime(sale.startsAt)],
    ["ends at", formatTime(sale.endsAt)],
    ...(sale.closedAt ? ([["closed at", formatTime(sale.closedAt)]] as [string, string][]) : []),
    ["created at", formatTime(sale.createdAt)],
  ];
}

const releasePolicyEffect = (p: ReleasePolicy) =>
  p === ReleasePolicy.RELEASE_POLICY_KEEP_ALLOWANCE ? "a cancelled or expired order still counts against the limit" : "a cancelled or expired order frees the allowance";

export function salesTable(sales: Sale[]): string {
  return table(
    ["SALE", "NAME", "SOLD", "STOCK", "LIMIT", "ON RELEASE", "PRICE", "STARTS (UTC)", "ENDS (UTC)", "CLOSED"],
    sales.map((s) => [
      s.saleId,
      truncate(s.name, 32),
      s.sold,
      s.totalStock,
      s.perUserLimit,
      releasePolicyName(s.releasePolicy),
      formatMoney(s.priceMinor, s.currency),
      formatTime(s.startsAt),
      formatTime(s.endsAt),
      s.closedAt ? "yes" : "",
    ]),
  );
}

export function saleCommand(ctx: CommandContext): Command {
  const sale = new Command("sale").description("create, list, inspect, open and close sales (SaleService)");

  sale
    .command("create")
    .description("create a sale (stock is warmed into Redis before it returns)")
    .option("--name <name>", 'display name (default: "Flash sale <start time>")')
    .option("--stock <units>", "units on sale", integer(1, 1_000_000), 100)
    .option("--price <minor>", "unit price in minor units (cents)", integer(0, 1e12), 1999)
    .option("--currency <code>", "ISO 4217 currency", "EUR")
    .addOption(new Option("--starts-in <duration>", "start this long from now (e.g. 10s, 5m); default: now").argParser(duration).conflicts("startsAt"))
    .addOption(new Option("--starts-at <iso>", "start at this time").argParser(isoTime))
    .addOption(new Option("--duration <duration>", "how long it stays open").argParser(duration).default(3_600_000, "1h").conflicts("endsAt"))
    .addOption(new Option("--ends-at <iso>", "end at this time").argParser(isoTime))
    .option("--per-user-limit <units>", "most units one user may buy", integer(1, 100), 1)
    .addOption(new Option("--payment-window <duration>", "time to pay an order").argParser(duration).default(900_000, "15m"))
    .addOption(
      new Option("--release-policy <policy>", "a cancelled or expired order: restore gives the buyer's allowance back, keep leaves it used")
        .choices(["restore", "keep"])
        .default("restore"),
    )
    .option("--request-id <id>", "idempotency key (default: random); the same id returns the same sale")
    .option("--json", "print the sale as JSON")
    .action((opts: SaleCreateOptions & { json?: boolean }, cmd: Command) =>
      ctx.withBackend(cmd, ["inventory"], async (backend) => {
        const request = createSaleRequest(opts, new Date());
        const { sale: created } = await callUnary(backend.sales, "createSale", request, { deadlineMs: backend.options.deadline });
        if (opts.json) return ctx.io.out(json(saleJson(created!)));
        ctx.io.out(`created sale ${created!.saleId}\n\n${keyValues(saleRows(created!))}`);
      }),
    );

  sale
    .command("list")
    .description("list sales, newest first")
    .option("--page-size <n>", "sales per page", integer(1, 100), 20)
    .option("--page-token <token>", "next_page_token of the previous page", "")
    .option("--json", "print the page as JSON")
    .action((opts: { pageSize: number; pageToken: string; json?: boolean }, cmd: Command) =>
      ctx.withBackend(cmd, ["inventory"], async (backend) => {
        const page = await callUnary(backend.sales, "listSales", { pageSize: opts.pageSize, pageToken: opts.pageToken }, { deadlineMs: backend.options.deadline });
        if (opts.json) return ctx.io.out(json({ sales: page.sales.map(saleJson), nextPageToken: page.nextPageToken }));
        if (page.sales.length === 0) return ctx.io.out("no sales");
        ctx.io.out(salesTable(page.sales));
        if (page.nextPageToken) ctx.io.out(`\nmore: seckill sale list --page-token ${page.nextPageToken}`);
      }),
    );

  sale
    .command("show")
    .description("one sale and its live status: phase, stock left, server time, countdown")
    .argument("<sale-id>")
    .option("--json", "print sale and status as JSON")
    .action((saleId: string, opts: { json?: boolean }, cmd: Command) =>
      ctx.withBackend(cmd, ["inventory"], async (backend) => {
        const deadlineMs = backend.options.deadline;
        const [{ sale: found }, live] = await Promise.all([
          callUnary(backend.sales, "getSale", { saleId }, { deadlineMs }),
          callUnary(backend.sales, "getSaleStatus", { saleId }, { deadlineMs }),
        ]);
        const status = {
          phase: phaseName(live.phase),
          stockLeft: live.stockLeft,
          totalStock: live.totalStock,
          serverTime: live.serverTime?.toISOString() ?? null,
          startsAt: live.startsAt?.toISOString() ?? null,
          endsAt: live.endsAt?.toISOString() ?? null,
          countdown: countdown(live),
        };
        if (opts.json) return ctx.io.out(json({ sale: saleJson(found!), status }));
        ctx.io.out(
          keyValues([
            ...saleRows(found!),
            ["phase", status.phase],
            ["stock left (Redis)", `${live.stockLeft} of ${live.totalStock}`],
            ["server time", formatTime(live.serverTime)],
            ["countdown", status.countdown],
          ]),
        );
      }),
    );

  for (const [verb, method, what] of [
    ["open", "openSale", "open a sale now (moves its start to the server's current time)"],
    ["close", "closeSale", "close a sale now: no purchase is accepted afterwards"],
  ] as const) {
    sale
      .command(verb)
      .description(what)
      .argument("<sale-id>")
      .option("--json", "print the sale as JSON")
      .action((saleId: string, opts: { json?: boolean }, cmd: Command) =>
        ctx.withBackend(cmd, ["inventory"], async (backend) => {
          const { sale: changed } = await callUnary(backend.sales, method, { saleId }, { deadlineMs: backend.options.deadline });
          if (opts.json) return ctx.io.out(json(saleJson(changed!)));
          ctx.io.out(`${verb === "open" ? "opened" : "closed"} sale ${changed!.saleId}\n\n${keyValues(saleRows(changed!))}`);
        }),
      );
  }
  sale
    .command("reconcile")
    .description("compare a sale in Redis, the event stream and Postgres and list every difference (exit code 1 when there is one)")
    .argument("<sale-id>")
    .option("--repair", "rebuild the sale's Redis state from Postgres when it differs (once the writer has drained)")
    .option("--json", "print the report as JSON")
    .action((saleId: string, opts: { repair?: boolean; json?: boolean }, cmd: Command) =>
      ctx.withBackend(cmd, ["inventory"], async (backend) => {
        const report = await callUnary(backend.sales, "reconcileSale", { saleId, repair: opts.repair ?? false }, { deadlineMs: backend.options.deadline });
        if (report.differences.length > 0) ctx.exitCode = 1;
        ctx.io.out(opts.json ? json(report) : reconcileReport(report));
      }),
    );
  return sale;
}

/** The reconcile report for a terminal: the three views side by side, then the differences. */
export function reconcileReport(r: ReconcileSaleResponse): string {
  const redis = r.redis!;
  const pg = r.postgres!;
  const queue = r.queue!;
  const views = keyValues([
    ["sale", r.saleId],
    ["checked at", formatTime(r.checkedAt)],
    [
      "redis",
      redis.loaded
        ? `${redis.stockLeft} left, ${redis.reservedUnits} units reserved in ${redis.reservations} reservations (${redis.released} released, ${redis.unconfirmed} unconfirmed), ${redis.buyerUnits} units on buyers`
        : "not loaded",
    ],
    [
      "postgres",
      `${pg.totalStock - pg.liveUnits} left of ${pg.totalStock}, sold ${pg.sold}, ${pg.orders} orders (${pg.released} released), ${pg.usersOverLimit} users over the limit`,
    ],
    ["stream", `published up to ${queue.publishedSeq}, written up to ${queue.writtenSeq}${queue.drained ? ", drained" : ", writer busy"}`],
  ]);
  const repaired = r.repaired ? "\nrepaired: the sale's Redis state was rebuilt from Postgres\n" : "";
  if (r.differences.length === 0) return `${views}\n${repaired}\nno differences: Redis, the stream and Postgres agree`;
  const rows = r.differences.map((d) => [d.kind, d.count, d.description, d.examples.slice(0, 3).join(" ")]);
  return `${views}\n${repaired}\n${table(["DIFFERENCE", "COUNT", "WHAT", "E.G."], rows)}`;
}
