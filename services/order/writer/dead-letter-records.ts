// The dead letters the order writer records for what it gives up on: a whole
// message, or one reservation of it. Each has a Nats-Msg-Id derived from the
// message's stream sequence (and the reservation), so recording it again after
// a failed publish or a redelivery leaves one letter.
import { createHash } from "node:crypto";
import type { JetStreamClient, JsMsg } from "@nats-io/jetstream";
import { DeadLetter, ReservationBatch, type ReservationMade } from "@seckill/sdk";
import type { DeadLetterNames } from "../../common/event-bus.js";
import { isRequestId } from "../../common/ids.js";

/**
 * Why something was given up on, as dead letters are counted: a message that is
 * not a ReservationBatch, a reservation missing a field, one Postgres or the
 * writer refused, a message still failing at its last deliveries.
 */
export type DeadLetterKind = "undecodable" | "incomplete" | "refused" | "max_deliveries";

/** A dead letter to publish, its Nats-Msg-Id, and its kind. */
export interface DeadLetterRecord {
  letter: DeadLetter;
  msgID: string;
  kind: DeadLetterKind;
}

/** A reservation id usable in a Nats-Msg-Id as is, else a digest of it. */
const msgIdPart = (id: string) => (isRequestId(id) ? id : `h${createHash("sha256").update(id).digest("hex").slice(0, 20)}`);

/** The whole message, given up on. */
export function messageDeadLetter(msg: JsMsg, reason: string, kind: DeadLetterKind): DeadLetterRecord {
  return {
    msgID: `dl-${msg.seq}`,
    kind,
    letter: {
      subject: msg.subject,
      streamSequence: msg.seq,
      payload: Buffer.from(msg.data),
      reason,
      deliveryCount: msg.info.deliveryCount,
      reservation: undefined,
      deadLetteredAt: new Date(),
    },
  };
}

/** One reservation of a message, refused. */
export function reservationDeadLetter(msg: JsMsg, reservation: ReservationMade, reason: string, kind: DeadLetterKind): DeadLetterRecord {
  return {
    msgID: `dl-${msg.seq}-${msgIdPart(reservation.reservationId)}`,
    kind,
    letter: {
      subject: msg.subject,
      streamSequence: msg.seq,
      payload: Buffer.from(ReservationBatch.encode({ reservations: [reservation] }).finish()),
      reason,
      deliveryCount: msg.info.deliveryCount,
      reservation,
      deadLetteredAt: new Date(),
    },
  };
}

/** Publishes one dead letter; resolves after the PubAck. */
export function deadLetterPublisher(js: JetStreamClient, names: DeadLetterNames, timeoutMs: number) {
  return (letter: DeadLetter, msgID: string) =>
    js.publish(names.deadLetters(letter.reservation?.saleId ?? letter.subject.slice(letter.subject.lastIndexOf(".") + 1)), DeadLetter.encode(letter).finish(), {
      msgID,
      timeout: timeoutMs,
    });
}
