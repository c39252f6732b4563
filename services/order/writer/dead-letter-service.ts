// seckill.v1.DeadLetterService: the order writer's dead letters for operators
// (list, replay). Recording them is dead-letter-records.ts.
import type { JetStreamClient, JetStreamManager, MsgRequest, StoredMsg } from "@nats-io/jetstream";
import {
  DeadLetter,
  DeadLetterServiceService,
  ReplayOutcome,
  ReservationBatch,
  type DeadLetterServiceServer,
  type ListDeadLettersRequest,
  type ListDeadLettersResponse,
  type ReplayDeadLettersRequest,
  type ReplayDeadLettersResponse,
  type ReplayResult,
  type StoredDeadLetter,
} from "@seckill/sdk";
import type { DeadLetterNames, EventNames } from "../../common/event-bus.js";
import { unary, type ServiceRegistration } from "../../common/grpc-server.js";
import type { Logger } from "../../common/log.js";
import { isRequestId } from "../../common/ids.js";
import { invalid } from "../../common/refusal.js";
import { errorMessage } from "../../common/error-message.js";

const PAGE_DEFAULT = 20;
const PAGE_MAX = 100;
const REPLAY_MAX_SEQUENCES = 100;
const REPLAY_ALL_MAX = 500;
/** Payloads longer than this are cut in listings. */
const LIST_PAYLOAD_MAX = 64 * 1024;
/** Replay answers remembered for their request id. */
const REMEMBERED_REPLAYS = 1000;

export interface DeadLetterOps {
  list(request: ListDeadLettersRequest, maxResponseBytes: number): Promise<ListDeadLettersResponse>;
  replay(request: ReplayDeadLettersRequest): Promise<ReplayDeadLettersResponse>;
}

export function deadLetterOps(opts: {
  js: JetStreamClient;
  jsm: JetStreamManager;
  names: DeadLetterNames;
  events: EventNames;
  publishTimeoutMs: number;
  log: Logger;
}): DeadLetterOps {
  const { jsm, names, log } = opts;
  const replays = new Map<string, Promise<ReplayDeadLettersResponse>>();

  /** The first dead letter at or after seq, or null. */
  const nextFrom = (seq: number): Promise<StoredMsg | null> => jsm.streams.getMessage(names.stream, { seq, next_by_subj: names.filter } as unknown as MsgRequest);

  const at = async (seq: number): Promise<StoredMsg | null> => {
    const m = await jsm.streams.getMessage(names.stream, { seq });
    return m && m.seq === seq ? m : null;
  };

  /** The reservations a dead letter holds, as the message to publish again. */
  function replayable(letter: DeadLetter): { saleId: string; batch: Uint8Array; count: number } | undefined {
    const found = replayableBatch(letter);
    // The sale id becomes a subject token: a poison one is not published.
    return found && /^[A-Za-z0-9_-]{1,64}$/.test(found.saleId) ? found : undefined;
  }

  function replayableBatch(letter: DeadLetter): { saleId: string; batch: Uint8Array; count: number } | undefined {
    if (letter.reservation?.saleId) {
      return { saleId: letter.reservation.saleId, batch: ReservationBatch.encode({ reservations: [letter.reservation] }).finish(), count: 1 };
    }
    try {
      const batch = ReservationBatch.decode(letter.payload);
      const saleId = batch.reservations[0]?.saleId;
      if (!saleId) return undefined;
      return { saleId, batch: letter.payload, count: batch.reservations.length };
    } catch {
      return undefined;
    }
  }

  async function replayOne(m: StoredMsg): Promise<ReplayResult> {
    let letter: DeadLetter;
    try {
      letter = DeadLetter.decode(m.data);
    } catch {
      return { sequence: m.seq, outcome: ReplayOutcome.REPLAY_OUTCOME_NOT_REPLAYABLE, reservations: 0, replayedSequence: 0 };
    }
    const again = replayable(letter);
    if (!again) return { sequence: m.seq, outcome: ReplayOutcome.REPLAY_OUTCOME_NOT_REPLAYABLE, reservations: 0, replayedSequence: 0 };
    const ack = await opts.js.publish(opts.events.reservationSubject(again.saleId), again.batch, {
      msgID: `replay-${m.seq}`,
      timeout: opts.publishTimeoutMs,
    });
    // Removed only once the events stream holds the reservations again.
    await jsm.streams.deleteMessage(names.stream, m.seq, false).catch((error: unknown) => {
      if (!/not found|no message/i.test(errorMessage(error))) throw error;
    });
    log.info("dead letter replayed", { sequence: m.seq, replayedSequence: ack.seq, reservations: again.count, reason: letter.reason });
    return { sequence: m.seq, outcome: ReplayOutcome.REPLAY_OUTCOME_REPLAYED, reservations: again.count, replayedSequence: ack.seq };
  }

  async function doReplay(request: ReplayDeadLettersRequest): Promise<ReplayDeadLettersResponse> {
    const results: ReplayResult[] = [];
    if (request.all) {
      let seq = 1;
      while (results.length < REPLAY_ALL_MAX) {
        const m = await nextFrom(seq);
        if (!m) return { results, more: false };
        results.push(await replayOne(m));
        seq = m.seq + 1;
      }
      return { results, more: (await nextFrom(seq)) !== null };
    }
    for (const seq of request.sequences) {
      const m = await at(seq);
      results.push(m ? await replayOne(m) : { sequence: seq, outcome: ReplayOutcome.REPLAY_OUTCOME_NOT_FOUND, reservations: 0, replayedSequence: 0 });
    }
    return { results, more: false };
  }

  return {
    async list(request, maxResponseBytes) {
      if (!Number.isInteger(request.pageSize) || request.pageSize < 0 || request.pageSize > PAGE_MAX) throw invalid("page_size", `0 to ${PAGE_MAX}`);
      const limit = request.pageSize || PAGE_DEFAULT;
      let seq = 1;
      if (request.pageToken) {
        const decoded = Buffer.from(request.pageToken, "base64url").toString();
        if (!/^\d{1,15}$/.test(decoded) || Number(decoded) < 1) throw invalid("page_token", "not a token from this list");
        seq = Number(decoded);
      } else if (request.startSequence) {
        if (!Number.isSafeInteger(request.startSequence) || request.startSequence < 0) throw invalid("start_sequence", "a stream sequence");
        seq = request.startSequence;
      }
      // Half the message budget: the rest is headroom for the envelope.
      let budget = Math.floor(maxResponseBytes / 2);
      const deadLetters: StoredDeadLetter[] = [];
      for (;;) {
        const m = await nextFrom(seq);
        if (!m) return { deadLetters, nextPageToken: "" };
        if (deadLetters.length >= limit || (deadLetters.length > 0 && m.data.length > budget)) {
          return { deadLetters, nextPageToken: Buffer.from(String(m.seq)).toString("base64url") };
        }
        let letter: DeadLetter;
        try {
          letter = DeadLetter.decode(m.data);
        } catch {
          letter = {
            subject: m.subject,
            streamSequence: 0,
            payload: Buffer.from(m.data),
            reason: "not a DeadLetter",
            deliveryCount: 0,
            reservation: undefined,
            deadLetteredAt: m.time,
          };
        }
        const payloadTruncated = letter.payload.length > LIST_PAYLOAD_MAX;
        if (payloadTruncated) letter = { ...letter, payload: letter.payload.subarray(0, LIST_PAYLOAD_MAX) };
        deadLetters.push({ sequence: m.seq, deadLetter: letter, payloadTruncated });
        budget -= Math.min(m.data.length, LIST_PAYLOAD_MAX + 4096);
        seq = m.seq + 1;
      }
    },

    async replay(request) {
      if (!isRequestId(request.requestId)) throw invalid("request_id", "1 to 64 characters of [A-Za-z0-9._:-]");
      if (request.all && request.sequences.length > 0) throw invalid("sequences", "must be empty when all is set");
      if (!request.all && request.sequences.length === 0) throw invalid("sequences", "name at least one dead letter, or set all");
      if (request.sequences.length > REPLAY_MAX_SEQUENCES) throw invalid("sequences", `at most ${REPLAY_MAX_SEQUENCES} per call`);
      if (request.sequences.some((s) => !Number.isSafeInteger(s) || s < 1)) throw invalid("sequences", "dead-letter sequences are 1 or more");
      if (new Set(request.sequences).size !== request.sequences.length) throw invalid("sequences", "a sequence is named twice");
      const remembered = replays.get(request.requestId);
      if (remembered) return remembered;
      const answer = doReplay(request);
      replays.set(request.requestId, answer);
      // A failed replay is not remembered: retrying it does the rest.
      answer.catch(() => replays.delete(request.requestId));
      while (replays.size > REMEMBERED_REPLAYS) replays.delete(replays.keys().next().value!);
      return answer;
    },
  };
}

export function deadLetterServiceRegistration(ops: DeadLetterOps, maxResponseBytes: number, log: Logger): ServiceRegistration {
  const implementation: DeadLetterServiceServer = {
    listDeadLetters: unary(log, "ListDeadLetters", (request: ListDeadLettersRequest) => ops.list(request, maxResponseBytes)),
    replayDeadLetters: unary(log, "ReplayDeadLetters", (request: ReplayDeadLettersRequest) => ops.replay(request)),
  };
  return { name: "seckill.v1.DeadLetterService", definition: DeadLetterServiceService, implementation };
}
