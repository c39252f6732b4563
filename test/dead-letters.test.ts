// Dead letters against real JetStream and Postgres: what the order writer gives
// up on is recorded with its reason before it is terminated or acked, the rest
// keeps flowing, operators list and replay dead letters through
// DeadLetterService (and the seckill command), and a message failing for a
// reason that is not an outage is given up after a bounded number of deliveries.
import { randomBytes } from "node:crypto";
import { credentials, status, type ServiceError } from "@grpc/grpc-js";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { callUnary, DeadLetterServiceClient, rejectionOf, ReplayOutcome, ReservationBatch, type ReservationMade, type StoredDeadLetter } from "@seckill/sdk";
import type { Io } from "../cli/src/context.js";
import { runCli } from "../cli/src/program.js";
import { connectNats, deadLetterNames, eventNames } from "../services/common/event-bus.js";
import { newOrderId, ulid } from "../services/common/ids.js";
import { eventually, startTestStack, writerDrained, type TestStack } from "./support/stack.js";

const MAX_DELIVER = 3;
let stack: TestStack;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
let client: DeadLetterServiceClient;
beforeAll(async () => {
  stack = await startTestStack({ WRITER_MAX_DELIVER: String(MAX_DELIVER) });
  nc = await connectNats(stack.config.natsUrl, "dead-letters-test");
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
  client = new DeadLetterServiceClient(stack.writer.address, credentials.createInsecure());
});
afterAll(async () => {
  client?.close();
  await jsm?.streams.delete(deadLetterNames(stack.config.namespace).stream).catch(() => undefined);
  await nc?.close();
  await stack?.stop();
});

const names = () => eventNames(stack.config.namespace);

async function publishRaw(saleId: string, data: Uint8Array): Promise<number> {
  const ack = await js.publish(names().reservationSubject(saleId), data, { msgID: `test-${ulid()}`, timeout: 5000 });
  return ack.seq;
}
const publish = (...events: ReservationMade[]) => publishRaw(events[0].saleId, ReservationBatch.encode({ reservations: events }).finish());

function event(saleId: string, userId: string, o: Partial<ReservationMade> = {}): ReservationMade {
  return { reservationId: newOrderId(saleId), saleId, userId, requestId: `dl-${randomBytes(4).toString("hex")}`, quantity: 1, reservedAt: new Date(), ...o };
}

const drained = (seq: number) => writerDrained(jsm, stack.config.namespace, seq);

/** Every dead letter, all pages. */
async function allDeadLetters(): Promise<StoredDeadLetter[]> {
  const found: StoredDeadLetter[] = [];
  let pageToken = "";
  do {
    const page = await callUnary(client, "listDeadLetters", { pageSize: 2, pageToken, startSequence: 0 });
    found.push(...page.deadLetters);
    pageToken = page.nextPageToken;
  } while (pageToken);
  return found;
}
const letterOf = async (reservationId: string) => (await allDeadLetters()).find((d) => d.deadLetter?.reservation?.reservationId === reservationId);
const ordersOf = (saleId: string) => stack.db("orders").where({ sale_id: saleId }).select("id", "user_id");

describe("dead letters", () => {
  it("records poison with its reason before giving up on it, and persists the rest", async () => {
    const sale = await stack.createSale({ totalStock: 2 });
    const good = [event(sale.saleId, "dl-good-1"), event(sale.saleId, "dl-good-2")];
    const excess = event(sale.saleId, "dl-excess");
    const ghost = event(ulid(), "dl-ghost");
    const before = stack.writer.writer.stats.deadLettered;

    const garbageSeq = await publishRaw(sale.saleId, Buffer.concat([Buffer.from([0x0f]), randomBytes(16)]));
    const seqs = [garbageSeq, await publish(good[0]), await publish(ghost), await publish(good[1]), await publish(excess)];
    await drained(Math.max(...seqs));

    expect((await ordersOf(sale.saleId)).map((r) => r.user_id).sort()).toEqual(["dl-good-1", "dl-good-2"]);
    await eventually(async () => stack.writer.writer.stats.deadLettered - before >= 3, 5000, "three dead letters");
    const letters = await allDeadLetters();
    const garbage = letters.find((d) => d.deadLetter?.streamSequence === garbageSeq);
    expect(garbage?.deadLetter).toMatchObject({ reason: expect.stringMatching(/undecodable/), deliveryCount: 1, reservation: undefined });
    expect(garbage?.deadLetter?.subject).toBe(names().reservationSubject(sale.saleId));
    expect((await letterOf(ghost.reservationId))?.deadLetter?.reason).toMatch(/unknown sale/);
    const oversold = await letterOf(excess.reservationId);
    expect(oversold?.deadLetter?.reason).toMatch(/beyond the stock/);
    expect(oversold?.deadLetter?.reservation).toMatchObject({ userId: "dl-excess", saleId: sale.saleId });
    expect(oversold?.deadLetter?.streamSequence).toBe(seqs[4]);
    // Stored on the sale's dead-letter subject (the unknown sale's too: its id is a valid token).
    const stored = await jsm.streams.getMessage(deadLetterNames(stack.config.namespace).stream, { seq: oversold!.sequence });
    expect(stored?.subject).toBe(deadLetterNames(stack.config.namespace).deadLetters(sale.saleId));
  });

  it("replays a refused reservation: dead-lettered again while Postgres refuses, persisted once the stock is raised", async () => {
    const sale = await stack.createSale({ totalStock: 1 });
    const first = event(sale.saleId, "replay-first");
    const second = event(sale.saleId, "replay-second");
    await drained(Math.max(await publish(first), await publish(second)));
    await eventually(async () => (await letterOf(second.reservationId)) !== undefined, 5000, "the dead letter");
    const letter = (await letterOf(second.reservationId))!;

    // Not yet accepted: replayed, refused again, and back in the dead letters under a new sequence.
    const again = await callUnary(client, "replayDeadLetters", { sequences: [letter.sequence], all: false, requestId: `r-${ulid()}` });
    expect(again.results).toEqual([{ sequence: letter.sequence, outcome: ReplayOutcome.REPLAY_OUTCOME_REPLAYED, reservations: 1, replayedSequence: expect.any(Number) }]);
    await drained(again.results[0].replayedSequence);
    await eventually(async () => ((await letterOf(second.reservationId))?.sequence ?? 0) > letter.sequence, 5000, "the dead letter again");
    const back = (await letterOf(second.reservationId))!;

    await stack.db("sales").where({ id: sale.saleId }).update({ total_stock: 2 });
    const requestId = `r-${ulid()}`;
    const replayed = await callUnary(client, "replayDeadLetters", { sequences: [back.sequence, 999_999], all: false, requestId });
    expect(replayed.results.map((r) => r.outcome)).toEqual([ReplayOutcome.REPLAY_OUTCOME_REPLAYED, ReplayOutcome.REPLAY_OUTCOME_NOT_FOUND]);
    await eventually(async () => (await ordersOf(sale.saleId)).length === 2, 10_000, "the replayed order");
    expect((await ordersOf(sale.saleId)).map((r) => r.id)).toContain(second.reservationId);
    expect(await letterOf(second.reservationId)).toBeUndefined();
    // The same request id gets the same answer, and publishes nothing again.
    expect(await callUnary(client, "replayDeadLetters", { sequences: [back.sequence, 999_999], all: false, requestId })).toEqual(replayed);
  });

  it("gives up on a message failing for a reason that is not an outage after MaxDeliver - 1 deliveries; the rest keeps flowing", async () => {
    const sale = await stack.createSale({ totalStock: 10, perUserLimit: 1 });
    // A fault only this user's rows hit: SQLSTATE P0001, neither an outage nor a constraint.
    await stack.db.raw(`
      CREATE OR REPLACE FUNCTION dl_test_bomb() RETURNS trigger AS $$
      BEGIN
        IF NEW.user_id = 'bomb' THEN RAISE EXCEPTION 'boom for the test'; END IF;
        RETURN NEW;
      END $$ LANGUAGE plpgsql`);
    await stack.db.raw(`CREATE TRIGGER dl_test_bomb BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION dl_test_bomb()`);
    try {
      const bomb = event(sale.saleId, "bomb");
      const fine = [event(sale.saleId, "fine-1"), event(sale.saleId, "fine-2")];
      const seqs = await Promise.all([publish(fine[0]), publish(bomb, event(sale.saleId, "fine-with-bomb")), publish(fine[1])]);
      await eventually(async () => (await ordersOf(sale.saleId)).length === 2, 10_000, "the fine orders");
      await drained(Math.max(...seqs));
      const letters = await allDeadLetters();
      const given = letters.find((d) => d.deadLetter?.streamSequence === seqs[1]);
      expect(given?.deadLetter?.deliveryCount).toBe(MAX_DELIVER - 1);
      expect(given?.deadLetter?.reason).toMatch(/still failing after 2 deliveries: .*boom for the test.*P0001/);
      expect(ReservationBatch.decode(given!.deadLetter!.payload).reservations.map((r) => r.userId)).toEqual(["bomb", "fine-with-bomb"]);
      expect((await ordersOf(sale.saleId)).map((r) => r.user_id).sort()).toEqual(["fine-1", "fine-2"]);
    } finally {
      await stack.db.raw("DROP TRIGGER IF EXISTS dl_test_bomb ON orders");
    }
  });

  it("refuses bad requests with INVALID_ARGUMENT naming the field", async () => {
    const bad = async (call: Promise<unknown>) => {
      const error = (await call.then(
        () => undefined,
        (e: unknown) => e,
      )) as ServiceError;
      expect(error?.code).toBe(status.INVALID_ARGUMENT);
      return rejectionOf(error).fieldViolations.map((v) => v.field);
    };
    expect(await bad(callUnary(client, "listDeadLetters", { pageSize: 101, pageToken: "", startSequence: 0 }))).toEqual(["page_size"]);
    expect(await bad(callUnary(client, "listDeadLetters", { pageSize: 1, pageToken: "!!", startSequence: 0 }))).toEqual(["page_token"]);
    expect(await bad(callUnary(client, "replayDeadLetters", { sequences: [], all: false, requestId: "x" }))).toEqual(["sequences"]);
    expect(await bad(callUnary(client, "replayDeadLetters", { sequences: [1], all: true, requestId: "x" }))).toEqual(["sequences"]);
    expect(await bad(callUnary(client, "replayDeadLetters", { sequences: [1], all: false, requestId: "" }))).toEqual(["request_id"]);
    expect(await bad(callUnary(client, "replayDeadLetters", { sequences: Array.from({ length: 101 }, (_, i) => i + 1), all: false, requestId: "x" }))).toEqual(["sequences"]);
  });
});

describe("seckill dead-letters", () => {
  async function cli(...args: string[]) {
    const out: string[] = [];
    const err: string[] = [];
    const io: Io = { out: (t) => out.push(t), err: (t) => err.push(t), stderr: { write: (c: string) => err.push(c), isTTY: false } };
    const code = await runCli(["--writer", stack.writer.address, ...args], io);
    return { code, stdout: out.join("\n"), stderr: err.join("\n") };
  }

  it("lists dead letters and replays them all", async () => {
    const sale = await stack.createSale({ totalStock: 1 });
    const lost = event(sale.saleId, "cli-lost");
    await drained(Math.max(await publish(event(sale.saleId, "cli-winner")), await publish(lost)));
    await eventually(async () => (await letterOf(lost.reservationId)) !== undefined, 5000, "the dead letter");

    const table = await cli("dead-letters", "list", "--page-size", "100");
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/SEQ\s+AT \(UTC\)/);
    expect(table.stdout).toContain(lost.reservationId);

    const listed = await cli("dead-letters", "list", "--json", "--page-size", "100");
    expect(listed.code).toBe(0);
    const page = JSON.parse(listed.stdout) as { deadLetters: { sequence: number; reason: string; reservations: { reservationId: string }[] }[] };
    const mine = page.deadLetters.find((d) => d.reservations[0]?.reservationId === lost.reservationId)!;
    expect(mine.reason).toMatch(/beyond the stock/);

    expect((await cli("dead-letters", "replay")).code).toBe(1);
    await stack.db("sales").where({ id: sale.saleId }).update({ total_stock: 2 });
    const replay = await cli("dead-letters", "replay", "--all", "--json");
    expect(replay.code).toBe(0);
    const results = (JSON.parse(replay.stdout) as { results: { sequence: number; outcome: string }[] }).results;
    expect(results.find((r) => r.sequence === mine.sequence)?.outcome).toBe("REPLAYED");
    // The undecodable message of the first test stays: there is nothing to publish again.
    expect(results.map((r) => r.outcome)).toContain("NOT_REPLAYABLE");
    await eventually(async () => (await ordersOf(sale.saleId)).some((r) => r.id === lost.reservationId), 10_000, "the replayed order");

    const errors: string[] = [];
    const unreachable = await runCli(["--writer", "127.0.0.1:1", "--deadline", "500", "dead-letters", "list"], {
      out: () => undefined,
      err: (t) => errors.push(t),
      stderr: { write: () => true },
    });
    expect(unreachable).toBe(1);
    expect(errors.join("")).toMatch(/cannot reach the order writer at 127\.0\.0\.1:1/);
  });
});
