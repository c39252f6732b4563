// `seckill dead-letters list|replay`: the events the order writer gave up on,
// through the DeadLetterService of the order writer process.
import { randomBytes } from "node:crypto";
import { credentials } from "@grpc/grpc-js";
import { Command } from "commander";
import { callUnary, DeadLetterServiceClient, replayOutcomeToJSON, ReservationBatch, type ReplayDeadLettersResponse, type StoredDeadLetter } from "@seckill/sdk";
import { CliError, describeError, isGrpcError, probeProblem } from "./backend.js";
import type { CommandContext } from "./context.js";
import { formatTime, json, table, truncate } from "./format.js";
import { integer } from "./options.js";

interface WriterOptions {
  writer: string;
  deadline: number;
}

/** Runs `fn` with a DeadLetterService client for --writer; gRPC errors become one readable line. */
async function withWriter<T>(cmd: Command, fn: (client: DeadLetterServiceClient, deadlineMs: number) => Promise<T>): Promise<T> {
  const { writer, deadline } = cmd.optsWithGlobals<WriterOptions>();
  const client = new DeadLetterServiceClient(writer, credentials.createInsecure());
  try {
    return await fn(client, deadline);
  } catch (error) {
    if (!isGrpcError(error)) throw error;
    throw new CliError(probeProblem("writer", writer, error) ?? describeError(error));
  } finally {
    client.close();
  }
}

/** The reservations a dead letter carries: its own, or those of its payload. */
function reservationsOf(d: StoredDeadLetter): { reservationId: string; saleId: string; userId: string; quantity: number }[] {
  const letter = d.deadLetter;
  if (letter?.reservation) return [letter.reservation];
  try {
    return letter ? ReservationBatch.decode(letter.payload).reservations : [];
  } catch {
    return [];
  }
}

export function deadLetterJson(d: StoredDeadLetter) {
  const l = d.deadLetter;
  return {
    sequence: d.sequence,
    subject: l?.subject ?? "",
    streamSequence: l?.streamSequence ?? 0,
    reason: l?.reason ?? "",
    deliveryCount: l?.deliveryCount ?? 0,
    deadLetteredAt: l?.deadLetteredAt?.toISOString() ?? null,
    reservations: reservationsOf(d).map((r) => ({ reservationId: r.reservationId, saleId: r.saleId, userId: r.userId, quantity: r.quantity })),
    payloadBase64: l ? Buffer.from(l.payload).toString("base64") : "",
    payloadTruncated: d.payloadTruncated,
  };
}

export function deadLettersTable(letters: StoredDeadLetter[]): string {
  return table(
    ["SEQ", "AT (UTC)", "STREAM SEQ", "DELIVERIES", "RESERVATION", "USER", "REASON"],
    letters.map((d) => {
      const rs = reservationsOf(d);
      return [
        d.sequence,
        formatTime(d.deadLetter?.deadLetteredAt),
        d.deadLetter?.streamSequence,
        d.deadLetter?.deliveryCount,
        rs.length === 0 ? "-" : rs.length === 1 ? rs[0].reservationId : `${rs.length} reservations`,
        rs.length === 1 ? truncate(rs[0].userId, 24) : "",
        truncate(d.deadLetter?.reason ?? "", 72),
      ];
    }),
  );
}

export function replayJson(r: ReplayDeadLettersResponse) {
  return {
    results: r.results.map((x) => ({
      sequence: x.sequence,
      outcome: replayOutcomeToJSON(x.outcome).replace(/^REPLAY_OUTCOME_/, ""),
      reservations: x.reservations,
      replayedSequence: x.replayedSequence,
    })),
    more: r.more,
  };
}

function sequence(value: string, previous: number[] = []): number[] {
  return [...previous, integer(1)(value)];
}

export function deadLetterCommand(ctx: CommandContext): Command {
  const dl = new Command("dead-letters").description("list and replay the events the order writer gave up on (DeadLetterService)");

  dl.command("list")
    .description("list dead letters, oldest first")
    .option("--page-size <n>", "dead letters per page", integer(1, 100), 20)
    .option("--page-token <token>", "next_page_token of the previous page", "")
    .option("--from <seq>", "first dead-letter sequence (when no --page-token)", integer(1), 0)
    .option("--json", "print the page as JSON")
    .action((opts: { pageSize: number; pageToken: string; from: number; json?: boolean }, cmd: Command) =>
      withWriter(cmd, async (client, deadlineMs) => {
        const page = await callUnary(client, "listDeadLetters", { pageSize: opts.pageSize, pageToken: opts.pageToken, startSequence: opts.from }, { deadlineMs });
        if (opts.json) return ctx.io.out(json({ deadLetters: page.deadLetters.map(deadLetterJson), nextPageToken: page.nextPageToken }));
        if (page.deadLetters.length === 0) return ctx.io.out("no dead letters");
        ctx.io.out(deadLettersTable(page.deadLetters));
        if (page.nextPageToken) ctx.io.out(`\nmore: seckill dead-letters list --page-token ${page.nextPageToken}`);
      }),
    );

  dl.command("replay")
    .description("publish dead letters' reservations again (the writer persists them if Postgres accepts them now) and remove them")
    .argument("[seq...]", "dead-letter sequences (see dead-letters list)")
    .option("--all", "replay the oldest dead letters (up to 500 per call)")
    .option("--request-id <id>", "idempotency key (default: random)")
    .option("--json", "print the results as JSON")
    .action((seqs: string[], opts: { all?: boolean; requestId?: string; json?: boolean }, cmd: Command) => {
      if (opts.all && seqs.length > 0) throw new CliError("give sequences or --all, not both");
      if (!opts.all && seqs.length === 0) throw new CliError("give the sequences to replay, or --all");
      let sequences: number[];
      try {
        sequences = seqs.reduce((acc, s) => sequence(s, acc), [] as number[]);
      } catch (error) {
        throw new CliError(`sequence: ${(error as Error).message}`);
      }
      return withWriter(cmd, async (client, deadlineMs) => {
        const request = { sequences, all: Boolean(opts.all), requestId: opts.requestId ?? `cli-${randomBytes(8).toString("hex")}` };
        const answer = await callUnary(client, "replayDeadLetters", request, { deadlineMs });
        if (opts.json) return ctx.io.out(json(replayJson(answer)));
        if (answer.results.length === 0) return ctx.io.out("no dead letters");
        const view = replayJson(answer);
        ctx.io.out(
          table(
            ["SEQ", "OUTCOME", "RESERVATIONS", "REPUBLISHED AS"],
            view.results.map((x) => [x.sequence, x.outcome, x.reservations, x.replayedSequence || ""]),
          ),
        );
        if (answer.more) ctx.io.out("\nmore dead letters left: run seckill dead-letters replay --all again");
      });
    });
  return dl;
}
