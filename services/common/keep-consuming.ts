// Consumes a durable JetStream pull consumer for as long as its owner runs,
// across the loss of the NATS node that leads the consumer. A pull request
// waits on the consumer's leader alone: when that node dies, the request dies
// with it and nothing tells the client, so consume() waits for messages that
// never come. Its idle heartbeats are how the library notices: while a pull
// waits, the leader sends one every HEARTBEAT_MS; after two missed ones the
// library asks for the consumer (a new leader answers once elected) and pulls
// again. With the library's defaults (15 s heartbeats, 30 s between its
// attempts) that took a minute or more, all orders waiting; here it takes
// seconds. Should heartbeats still not come back (the re-pull was sent while
// no leader was elected yet), or the consumption end by itself, it is closed
// and started afresh on a new inbox, with a bounded backoff.
//
// Messages delivered before a restart stay valid: their acks go to the
// consumer, not to the consumption. Messages a dead leader had sent and not
// yet seen acknowledged are redelivered after AckWait; nothing is lost.
import type { Consumer, ConsumerMessages, JsMsg } from "@nats-io/jetstream";
import { errorMessage } from "./error-message.js";
import type { Logger } from "./log.js";
import { retryUntilStopped } from "./retry.js";

/** How often a waiting pull request is confirmed by its leader; two missed ones mean it was lost. */
export const HEARTBEAT_MS = 1000;
/** Lifetime of one pull request (at least twice the heartbeat, as the server requires); the library pulls again as one ends. */
export const PULL_EXPIRES_MS = 5000;
/** Heartbeats missed in a row (the library's own re-pulls not having helped) before the consumption is started afresh. */
export const RESTART_AFTER_MISSED = 5;
const RESTART_DELAY_MS = 250;
const MAX_RESTART_DELAY_MS = 5000;

export interface KeepConsumingOptions {
  consumer: Consumer;
  /** Messages asked for at a time: what the owner may hold unacknowledged from one pull. */
  maxMessages: number;
  callback: (msg: JsMsg) => void;
  log: Logger;
  /** The consumer's name, for the log. */
  name: string;
}

export interface Consumption {
  /** Consumptions started (1 + restarts). */
  readonly starts: number;
  /** Stops pulling; messages already delivered stay the owner's to ack or nak. */
  stop(): Promise<void>;
}

export async function keepConsuming(opts: KeepConsumingOptions): Promise<Consumption> {
  const { log, name } = opts;
  let stopped = false;
  let starts = 0;
  let current: ConsumerMessages | undefined;
  let restarting: Promise<void> | undefined;

  const consume = () =>
    opts.consumer.consume({
      max_messages: opts.maxMessages,
      idle_heartbeat: HEARTBEAT_MS,
      expires: PULL_EXPIRES_MS,
      callback: opts.callback,
    });

  /** Follows one consumption's notifications and end; either may call for a fresh one. */
  function watch(messages: ConsumerMessages): void {
    void (async () => {
      for await (const s of messages.status()) {
        if (stopped || messages !== current) return;
        switch (s.type) {
          case "heartbeats_missed":
            if (s.count === 2) log.warn("consumer heartbeats missed; pulling again", { consumer: name });
            if (s.count >= RESTART_AFTER_MISSED) return restart(`${s.count} heartbeats missed`);
            break;
          case "consumer_not_found":
          case "consumer_deleted":
          case "stream_not_found":
            log.error("consumer not found; still trying", { consumer: name, status: s.type });
            break;
        }
      }
    })();
    // The library ends a consumption by itself on a refused pull or a lost subscription; an Error says why.
    void messages.closed().then((error) => {
      if (messages === current) restart(error ? `consumption failed: ${errorMessage(error)}` : "consumption ended");
    });
  }

  function restart(reason: string): void {
    if (stopped || restarting) return;
    const old = current;
    current = undefined;
    log.warn("consumer restarted", { consumer: name, reason });
    restarting = (async () => {
      await old?.close().catch(() => undefined);
      const outcome = await retryUntilStopped(consume, {
        delayMs: RESTART_DELAY_MS,
        maxDelayMs: MAX_RESTART_DELAY_MS,
        stopped: () => stopped,
        onRetry: (error, retryInMs) => log.warn("consumer not restarted; retrying", { consumer: name, retryInMs, err: errorMessage(error) }),
      });
      restarting = undefined;
      if (!outcome.done) return;
      if (stopped) return void (await outcome.value.close().catch(() => undefined));
      started(outcome.value);
    })();
  }

  function started(messages: ConsumerMessages): void {
    starts++;
    current = messages;
    watch(messages);
  }

  started(await consume());

  return {
    get starts() {
      return starts;
    },
    async stop() {
      stopped = true;
      await restarting;
      await current?.close().catch(() => undefined);
    },
  };
}
