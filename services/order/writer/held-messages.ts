// The messages the order writer holds: delivered, and not yet acked, nak'ed or
// terminated. Each is reported in progress several times per AckWait, so the
// consumer's AckWait can be short (the events a dead writer held come back
// within seconds) while none is redelivered as long as a live writer still
// works on it, however long its write takes.
import type { JsMsg } from "@nats-io/jetstream";

export interface HeldMessages {
  hold(msg: JsMsg): void;
  has(msg: JsMsg): boolean;
  ack(msg: JsMsg): void;
  nak(msg: JsMsg, delayMs?: number): void;
  term(msg: JsMsg): void;
  /** Ends the reports: a message still held goes back to JetStream after its AckWait. */
  stop(): void;
}

export function holdMessages(ackWaitMs: number): HeldMessages {
  const held = new Set<JsMsg>();
  // Several times per AckWait, so that one late tick (a busy event loop) does
  // not let a message held here go back to JetStream.
  const heartbeat = setInterval(
    () => {
      try {
        for (const msg of held) msg.working();
      } catch {
        // The connection is closed: nothing to keep alive, JetStream redelivers.
      }
    },
    Math.max(100, Math.floor(ackWaitMs / 3)),
  );
  heartbeat.unref();
  return {
    hold: (msg) => void held.add(msg),
    has: (msg) => held.has(msg),
    ack(msg) {
      held.delete(msg);
      msg.ack();
    },
    nak(msg, delayMs) {
      held.delete(msg);
      msg.nak(delayMs);
    },
    term(msg) {
      held.delete(msg);
      msg.term();
    },
    stop: () => clearInterval(heartbeat),
  };
}
