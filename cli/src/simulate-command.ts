// `seckill simulate`: a whole flash sale against the running backend, then
// the verdict (text or JSON) and optionally an HTML report.
import { randomInt } from "node:crypto";
import { writeFileSync } from "node:fs";
import { Command, Option } from "commander";
import type { CommandContext } from "./context.js";
import { json } from "./format.js";
import { duration, fraction, integer } from "./options.js";
import { DEFAULT_SIMULATION as D, type SimulationOptions } from "./simulate/plan.js";
import { renderReport } from "./simulate/report.js";
import { simulate } from "./simulate/run.js";
import { exitCodeOf, renderSummary } from "./simulate/summary.js";

interface SimulateFlags extends Omit<SimulationOptions, "deadlineMs" | "seed" | "startsInMs" | "rampMs" | "watchTimeoutMs" | "persistTimeoutMs"> {
  seed?: number;
  startsIn: number;
  ramp: number;
  watchTimeout: number;
  persistTimeout: number;
  json?: boolean;
  report?: string;
  quiet?: boolean;
  direct?: boolean;
}

const ms = (n: number) => (n % 1000 === 0 ? `${n / 1000}s` : `${n}ms`);

export function simulateCommand(ctx: CommandContext): Command {
  return new Command("simulate")
    .summary("run a realistic flash sale against the backend and check the result")
    .description(
      "run a realistic flash sale against the backend: create a sale, wait for its opening, release a crowd of buyers " +
        "(each click: a purchase token from the gateway, then PlaceOrder with it), " +
        "then check that exactly the stock was sold, within the per-user limit, and all of it reached Postgres. " +
        "The buyers' calls go through the edge (Envoy, --edge) unless --direct; CreateSale and the reads that check the result " +
        "go to the services (--inventory, --order). Exits 2 when a check fails.",
    )
    .option("--users <n>", "buyers in the crowd", integer(1, 1_000_000), D.users)
    .option("--stock <units>", "units on sale", integer(1, 1_000_000), D.stock)
    .option("--per-user-limit <units>", "most units one user may buy", integer(1, 100), D.perUserLimit)
    .option("--quantity <units>", "units each click asks for", integer(1, 100), D.quantity)
    .option("--concurrency <n>", "most buyers in flight at once", integer(1, 100_000), D.concurrency)
    .addOption(new Option("--starts-in <duration>", "time from creating the sale to its opening").argParser(duration).default(D.startsInMs, ms(D.startsInMs)))
    .addOption(new Option("--ramp <duration>", "buyers arrive over this span after the opening, most of them early").argParser(duration).default(D.rampMs, ms(D.rampMs)))
    .option("--impatient <share>", "share of buyers who click a second time with a new request id", fraction, D.impatient)
    .option("--seed <n>", "seed of arrival order and request ids (default: random, printed)", integer(0, 2 ** 32 - 1))
    .option("--max-attempts <n>", "PlaceOrder attempts per click on UNAVAILABLE / DEADLINE_EXCEEDED (same request id)", integer(1, 20), D.maxAttempts)
    .addOption(new Option("--watch-timeout <duration>", "how long a winner watches the order for CREATED").argParser(duration).default(D.watchTimeoutMs, ms(D.watchTimeoutMs)))
    .addOption(
      new Option("--persist-timeout <duration>", "how long to wait for Postgres after buying ends").argParser(duration).default(D.persistTimeoutMs, ms(D.persistTimeoutMs)),
    )
    .option("--verify-users <n>", "most winning users whose orders are listed back (ListOrders)", integer(0, 1_000_000), D.verifyUsers)
    .option("--name <name>", "display name of the sale")
    .option("--json", "print the summary as JSON on stdout")
    .option("--report <file.html>", "write a self-contained HTML report with charts")
    .option("--quiet", "no progress or narration on stderr")
    .option("--direct", "buyers call the order service and the gateway directly (--order, --gateway), not through the edge")
    .action((flags: SimulateFlags, cmd: Command) =>
      ctx.withBackend(
        cmd,
        flags.direct ? ["inventory", "order", "gateway"] : ["inventory", "order", "edge"],
        async (backend) => {
          const options: SimulationOptions = {
            users: flags.users,
            stock: flags.stock,
            perUserLimit: flags.perUserLimit,
            quantity: flags.quantity,
            concurrency: flags.concurrency,
            startsInMs: flags.startsIn,
            rampMs: flags.ramp,
            impatient: flags.impatient,
            seed: flags.seed ?? randomInt(0, 2 ** 32 - 1),
            maxAttempts: flags.maxAttempts,
            deadlineMs: backend.options.deadline,
            watchTimeoutMs: flags.watchTimeout,
            persistTimeoutMs: flags.persistTimeout,
            verifyUsers: flags.verifyUsers,
            name: flags.name,
          };
          const result = await simulate(backend, options, {
            log: (line) => flags.quiet || ctx.io.err(line),
            progress: ctx.io.stderr,
            quiet: flags.quiet,
          });
          if (flags.report) {
            writeFileSync(flags.report, renderReport({ summary: result.summary, calls: result.calls, clicks: result.clicks, persistSamples: result.persistSamples }));
            if (!flags.quiet) ctx.io.err(`report written to ${flags.report}`);
          }
          ctx.io.out(flags.json ? json(result.summary) : renderSummary(result.summary));
          ctx.exitCode = exitCodeOf(result.summary);
        },
        { throughEdge: !flags.direct },
      ),
    );
}
