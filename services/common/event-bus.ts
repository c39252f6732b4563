// JetStream: the stream that carries reservation, release and order-status
// events, its names under the configured namespace, and typed publishing.
// Every event is published with a Nats-Msg-Id so a republish is deduplicated.
import { connect, type NatsConnection } from "@nats-io/transport-node";
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type JetStreamClient,
  type JetStreamManager,
  type PubAck,
} from "@nats-io/jetstream";
import { OrderStatusBatch, ReservationBatch, StockReleased, type OrderStatusChanged, type ReservationMade } from "@seckill/sdk";
import { urlList } from "./config.js";
import { ulid } from "./ids.js";
import { tracedPublish } from "./nats-tracing.js";

const NANOS_PER_MS = 1_000_000;

export interface EventNames {
  stream: string;
  writerConsumer: string;
  /** Inventory's durable consumer of stock releases (applies them to Redis). */
  inventoryReleaseConsumer: string;
  /** The subject of a sale's ReservationBatch events. */
  reservationSubject(saleId: string): string;
  /** The subject of a sale's StockReleased events. */
  releaseSubject(saleId: string): string;
  /** Order status notifications (core NATS, not stored). */
  orderStatus: string;
  /** Every sale's reservation subject (a wildcard). */
  reservationSubjects: string;
  /** Every sale's release subject (a wildcard). */
  releaseSubjects: string;
}

export function eventNames(namespace: string): EventNames {
  return {
    stream: `${namespace}_events`,
    writerConsumer: `${namespace}_order_writer`,
    inventoryReleaseConsumer: `${namespace}_inventory_releases`,
    reservationSubject: (saleId) => `${namespace}.reservations.${saleId}`,
    releaseSubject: (saleId) => `${namespace}.releases.${saleId}`,
    orderStatus: `${namespace}.order-status`,
    reservationSubjects: `${namespace}.reservations.*`,
    releaseSubjects: `${namespace}.releases.*`,
  };
}

/**
 * How often the client pings its server, and how many pings may go unanswered
 * before it drops the connection and reconnects (to another node of a cluster).
 * A link that dies silently (a blackhole, a node cut off) closes no socket: with
 * the client's defaults (2 minutes, 2 pings) it would be noticed only after
 * minutes, and publishes would wait on it; with these, within 20 s.
 */
export const NATS_PING_INTERVAL_MS = 5000;
export const NATS_MAX_PINGS_OUT = 3;

/** Connects to one server of `url`, a NATS URL or a comma-separated list of them (the nodes of a cluster). */
export async function connectNats(url: string, name: string): Promise<NatsConnection> {
  return connect({
    servers: urlList(url),
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    timeout: 5000,
    pingInterval: NATS_PING_INTERVAL_MS,
    maxPingOut: NATS_MAX_PINGS_OUT,
  });
}

/**
 * Copies of a stream on the servers of a cluster (JETSTREAM_REPLICAS).
 * Undefined: a new stream gets one, an existing one keeps its own (tools
 * that only read or publish do not rescale what the services set up).
 */
export type Replicas = number | undefined;

/** Creates the events stream, or brings its subjects, limits and replicas up to date. */
export async function ensureStream(jsm: JetStreamManager, names: EventNames, replicas?: Replicas): Promise<void> {
  // Order-status notifications are not stored: they only wake watchers, who
  // read the truth from Postgres. Kept long enough for any backlog to drain;
  // never limited by count or size, which would drop unwritten reservations.
  await upsertStream(jsm, names.stream, [names.reservationSubjects, names.releaseSubjects], 7, replicas);
}

/** The order writer's durable pull consumer of reservation events. */
export async function ensureWriterConsumer(jsm: JetStreamManager, names: EventNames, opts: { ackWaitMs: number; maxDeliver: number; maxAckPending: number }): Promise<void> {
  await upsertConsumer(jsm, names.stream, {
    durable_name: names.writerConsumer,
    filter_subject: names.reservationSubjects,
    ack_wait: opts.ackWaitMs * NANOS_PER_MS,
    max_deliver: opts.maxDeliver,
    max_ack_pending: opts.maxAckPending,
  });
}

/** Inventory's durable pull consumer of StockReleased events; releases are never given up. */
export async function ensureInventoryReleaseConsumer(jsm: JetStreamManager, names: EventNames, opts: { ackWaitMs: number }): Promise<void> {
  await upsertConsumer(jsm, names.stream, {
    durable_name: names.inventoryReleaseConsumer,
    filter_subject: names.releaseSubjects,
    ack_wait: opts.ackWaitMs * NANOS_PER_MS,
    max_deliver: -1,
    max_ack_pending: 1000,
  });
}

/**
 * Creates a durable pull consumer (explicit acks, from the start of the
 * stream), or brings an existing one's settings up to date (its name and
 * start cannot change). Its replicas are the stream's (num_replicas 0), so a
 * consumer's acks are kept on as many servers as the events it acknowledges,
 * and follow the stream when it is rescaled.
 */
async function upsertConsumer(
  jsm: JetStreamManager,
  stream: string,
  settings: { durable_name: string; filter_subject: string; ack_wait: number; max_deliver: number; max_ack_pending: number },
): Promise<void> {
  const config = { ...settings, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All, num_replicas: 0 };
  try {
    await jsm.consumers.info(stream, settings.durable_name);
    const { durable_name: _name, deliver_policy: _policy, ...updatable } = config;
    await jsm.consumers.update(stream, settings.durable_name, updatable);
  } catch (error) {
    if (!isNotFound(error)) throw error;
    await jsm.consumers.add(stream, config);
  }
}

/**
 * Creates a file-backed stream kept by age only, or brings an existing one's
 * subjects, limits and replicas up to date (JetStream moves a stream to more
 * or fewer servers in place).
 */
async function upsertStream(jsm: JetStreamManager, name: string, subjects: string[], maxAgeDays: number, replicas: Replicas): Promise<void> {
  const config = {
    name,
    subjects,
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    max_age: maxAgeDays * 24 * 3600 * 1000 * NANOS_PER_MS,
    duplicate_window: 2 * 60 * 1000 * NANOS_PER_MS,
  };
  try {
    const current = await jsm.streams.info(name);
    await jsm.streams.update(name, { ...config, num_replicas: replicas ?? current.config.num_replicas });
  } catch (error) {
    if (!isNotFound(error)) throw error;
    await jsm.streams.add({ ...config, num_replicas: replicas ?? 1 });
  }
}

function isNotFound(error: unknown): boolean {
  const e = error as { code?: unknown; api_error?: { code?: number }; message?: string };
  return e?.api_error?.code === 404 || /not found/i.test(e?.message ?? "");
}

/** The dead-letter stream: events the order writer gave up on, kept for operators. */
export interface DeadLetterNames {
  stream: string;
  /** `<ns>.dead-letters.<sale>`; "unknown" when the sale id is missing or not a safe subject token. */
  deadLetters(saleId: string | undefined): string;
  filter: string;
}

export function deadLetterNames(namespace: string): DeadLetterNames {
  return {
    stream: `${namespace}_dead_letters`,
    deadLetters: (saleId) => `${namespace}.dead-letters.${saleId && /^[A-Za-z0-9_-]{1,64}$/.test(saleId) ? saleId : "unknown"}`,
    filter: `${namespace}.dead-letters.*`,
  };
}

/** Creates the dead-letter stream, or brings its subjects, limits and replicas up to date. */
export async function ensureDeadLetterStream(jsm: JetStreamManager, names: DeadLetterNames, replicas?: Replicas): Promise<void> {
  // Long enough for operators to look, raise the stock and replay.
  await upsertStream(jsm, names.stream, [names.filter], 90, replicas);
}

/** How far reservation events are published and written. */
export interface JetStreamProgress {
  /** Stream sequence of the last event published. */
  published: number;
  /** The writer has handled every reservation event up to this stream sequence. */
  written: number;
  /** The writer has nothing left to handle at all. */
  idle: boolean;
}

export async function readJetStreamProgress(jsm: JetStreamManager, names: EventNames): Promise<JetStreamProgress> {
  const [stream, writer] = await Promise.all([jsm.streams.info(names.stream), jsm.consumers.info(names.stream, names.writerConsumer)]);
  return {
    published: stream.state.last_seq,
    written: writer.ack_floor.stream_seq,
    idle: writer.num_pending === 0 && writer.num_ack_pending === 0,
  };
}

export interface EventPublisher {
  /** Reservations of one sale, in one message. */
  reservationsMade(saleId: string, events: ReservationMade[]): Promise<PubAck>;
  stockReleased(event: StockReleased): Promise<PubAck>;
  /** Core NATS, fire and forget: a lost notification only delays a watcher's re-read. */
  orderStatusChanged(changes: OrderStatusChanged[]): void;
}

export function createEventPublisher(nc: NatsConnection, js: JetStreamClient, names: EventNames, timeoutMs: number): EventPublisher {
  return {
    // Each message carries the trace it was published in (nats-tracing.ts).
    reservationsMade: (saleId, events) => {
      const subject = names.reservationSubject(saleId);
      return tracedPublish("send reservations", subject, (headers) =>
        js.publish(subject, ReservationBatch.encode({ reservations: events }).finish(), {
          msgID: events.length === 1 ? events[0].reservationId : `batch-${ulid()}`,
          timeout: timeoutMs,
          headers,
        }),
      );
    },
    stockReleased: (event) => {
      const subject = names.releaseSubject(event.saleId);
      return tracedPublish("send release", subject, (headers) =>
        js.publish(subject, StockReleased.encode(event).finish(), { msgID: `release-${event.reservationId}`, timeout: timeoutMs, headers }),
      );
    },
    orderStatusChanged: (changes) => {
      if (changes.length > 0 && !nc.isClosed()) nc.publish(names.orderStatus, OrderStatusBatch.encode({ changes }).finish());
    },
  };
}

export interface EventBus {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  names: EventNames;
  publisher: EventPublisher;
  close(): Promise<void>;
}

/** Connects, makes sure the stream exists (with `replicas` copies when given), and returns the handles a service needs. */
export async function openEventBus(url: string, namespace: string, clientName: string, publishTimeoutMs: number, replicas?: Replicas): Promise<EventBus> {
  const nc = await connectNats(url, clientName);
  const jsm = await jetstreamManager(nc);
  const names = eventNames(namespace);
  await ensureStream(jsm, names, replicas);
  const js = jetstream(nc);
  return {
    nc,
    js,
    jsm,
    names,
    publisher: createEventPublisher(nc, js, names, publishTimeoutMs),
    close: async () => {
      if (!nc.isClosed()) await nc.drain();
    },
  };
}
