// Sending a call again when its answer was lost, as the purchase protocol asks:
// UNAVAILABLE and DEADLINE_EXCEEDED are sent again (PlaceOrder: the same
// request id, retry: true) after RetryInfo's delay or a capped, jittered
// backoff; any other answer is final. Through the edge, Envoy's own refusals
// are read apart from the services' (edge-refusal.ts).
import { setTimeout as timeout } from "node:timers/promises";
import { status } from "@grpc/grpc-js";
import { edgeRefusalOf, type EdgeRefusal, type GrpcErrorLike } from "./edge-refusal.js";
import { rejectionOf } from "./rejection.js";

/** The codes of a lost answer: the call may or may not have been carried out. */
export const isRetryable = (code: number): boolean => code === status.UNAVAILABLE || code === status.DEADLINE_EXCEEDED;

/**
 * Most retries the edge's limits may refuse in the service's place after an
 * answer was lost, on top of the attempts (see callWithRetries).
 */
export const MAX_EDGE_HELD_RETRIES = 20;

/**
 * The wait before retry number `attempt` (1 for the first retry): the server's
 * RetryInfo delay when it sent one, stretched by up to half at random so that
 * a crowd told the same delay does not come back at once; otherwise 50 ms
 * doubling per retry up to 2 s, times 0.5 to 1.5 at random.
 */
export function retryDelayMs(attempt: number, hintMs: number | undefined, random: () => number = Math.random): number {
  if (hintMs !== undefined && hintMs >= 0) return Math.round(hintMs * (1 + 0.5 * random()));
  const base = Math.min(2000, 50 * 2 ** (attempt - 1));
  return Math.round(base * (0.5 + random()));
}

/** What a failed attempt answered. */
export interface CallFailure {
  code: status;
  message: string;
  /** ErrorInfo.reason of a service's refusal ("SOLD_OUT", ...). */
  reason?: string;
  /** RetryInfo: how long the server asked to wait before a retry. */
  retryDelayMs?: number;
  /** Which refusal of the edge's it was (read only for calls made through the edge). */
  edge?: EdgeRefusal;
}

export function callFailureOf(error: unknown, throughEdge: boolean): CallFailure {
  if (typeof error === "object" && error !== null && typeof (error as GrpcErrorLike).code === "number") {
    const r = rejectionOf(error as Parameters<typeof rejectionOf>[0]);
    const edge = throughEdge ? edgeRefusalOf(error as GrpcErrorLike) : undefined;
    return { code: r.code, message: r.message, reason: r.reason, retryDelayMs: r.retryDelayMs, ...(edge ? { edge } : {}) };
  }
  return { code: status.UNKNOWN, message: error instanceof Error ? error.message : String(error) };
}

/** grpc-js's own errors for a connection that never carried a response have no metadata; any answer has some (content-type at least). */
const answeredAtAll = (error: unknown): boolean => Object.keys((error as Partial<GrpcErrorLike> | null)?.metadata?.getMap?.() ?? {}).length > 0;

/** One call as sent and answered: what onAttempt is told. Times are `now()`'s. */
export interface AttemptRecord {
  /** 1 for the first call, then counting every retry (those the edge refused in the service's place too). */
  call: number;
  retry: boolean;
  startMs: number;
  endMs: number;
  /** status.OK when the call succeeded. */
  code: status;
  reason?: string;
  edge?: EdgeRefusal;
  /** The error's message, for a failed call. */
  message?: string;
}

export interface RetryOptions {
  /** Calls per click, the first one included; the edge's refusals of a retry after a lost answer are not counted (default 4). */
  maxAttempts?: number;
  /** The client dials the edge: read Envoy's own refusals apart from the services' (default true). */
  throughEdge?: boolean;
  /** Aborting stops the retries and cancels the call in flight. */
  signal?: AbortSignal;
  /** Told of every call, retries included, once it is answered. */
  onAttempt?: (attempt: AttemptRecord) => void;
  /** Milliseconds on a monotonic clock (default performance.now). */
  now?: () => number;
  /** Waits before a retry (default a timer, cut short by the signal). */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** In [0, 1), for the backoff's jitter (default Math.random). */
  random?: () => number;
}

export const DEFAULT_MAX_ATTEMPTS = 4;

export type Attempted<T> =
  | { ok: true; value: T; calls: number; atMs: number }
  | {
      ok: false;
      error: CallFailure;
      calls: number;
      /** The service (or the edge, in its place) answered with a refusal: the click's answer. */
      refused: boolean;
      /** Every attempt failed UNAVAILABLE without a single header from anything: nothing could be reached (no server listening, no route). */
      unreachable: boolean;
      /**
       * No answer tells whether the call was carried out: an attempt's answer
       * was lost and no later one came from the service (or the last was cut
       * short, or failed unexplained). For PlaceOrder, the order may exist:
       * the same request id with retry: true, or ListOrders, tells.
       */
      mayHaveBeenAccepted: boolean;
    };

const sleepFor = async (ms: number, signal?: AbortSignal) => {
  await timeout(Math.max(0, ms), undefined, { signal }).catch(() => undefined);
};

/**
 * Sends until answered or out of attempts, waiting RetryInfo's delay (or a
 * backoff) before each retry. Once an answer was lost (UNAVAILABLE,
 * DEADLINE_EXCEEDED), only the service can tell whether that attempt was
 * accepted: a retry the edge's token bucket or global limit refuses in its
 * place does not answer that, so it is sent again after a backoff, up to
 * MAX_EDGE_HELD_RETRIES times without spending an attempt; a retry refused by
 * the edge's token check ends the click unanswered.
 */
export async function callWithRetries<T>(send: (retry: boolean) => Promise<T>, options: RetryOptions = {}): Promise<Attempted<T>> {
  const { signal, onAttempt } = options;
  const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  const throughEdge = options.throughEdge ?? true;
  const now = options.now ?? (() => performance.now());
  const sleep = options.sleep ?? sleepFor;
  const random = options.random ?? Math.random;
  let lost = false;
  let held = 0;
  let reached = false;
  const unanswered = (error: CallFailure, calls: number) => ({
    ok: false as const,
    error,
    calls,
    refused: false,
    unreachable: !reached && error.code === status.UNAVAILABLE,
    mayHaveBeenAccepted: lost || error.code === status.CANCELLED || error.code === status.UNKNOWN || error.code === status.INTERNAL,
  });
  for (let call = 1; ; call++) {
    if (signal?.aborted) return unanswered({ code: status.CANCELLED, message: "aborted before the call was sent" }, call - 1);
    const attempt = call - held;
    const startMs = now();
    try {
      const value = await send(call > 1);
      const endMs = now();
      onAttempt?.({ call, retry: call > 1, startMs, endMs, code: status.OK });
      return { ok: true, value, calls: call, atMs: endMs };
    } catch (error) {
      const e = callFailureOf(error, throughEdge);
      reached ||= answeredAtAll(error);
      onAttempt?.({ call, retry: call > 1, startMs, endMs: now(), code: e.code, reason: e.reason, ...(e.edge ? { edge: e.edge } : {}), message: e.message });
      if (lost && (e.edge === "tokenBucket" || e.edge === "globalLimit")) {
        if (held === MAX_EDGE_HELD_RETRIES) return unanswered(e, call);
        held++;
        await sleep(retryDelayMs(attempt, undefined, random), signal);
        continue;
      }
      if (lost && e.edge === "tokenCheck") return unanswered(e, call);
      if (isRetryable(e.code) && attempt < maxAttempts) {
        lost = true;
        await sleep(retryDelayMs(attempt, e.retryDelayMs, random), signal);
        continue;
      }
      // A refusal is an answer: the service's names its reason; the edge's limits and token check are Envoy's answer in its place.
      if ((e.reason !== undefined || e.edge !== undefined) && !isRetryable(e.code))
        return { ok: false, error: e, calls: call, refused: true, unreachable: false, mayHaveBeenAccepted: false };
      return unanswered(e, call);
    }
  }
}
