// W3C trace context (`traceparent`, `tracestate`) as one purchase crosses
// processes: gRPC metadata, JetStream message headers, and the trace id in log
// lines. Three modes: off (tracing not set up: nothing is read or written, the
// in-process test stacks), propagating (no exporter: an incoming traceparent is
// continued and passed on, and its trace id logged; a call without one costs
// one header read), and exporting (the SDK records spans, tracing.ts).
import {
  context,
  isSpanContextValid,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Link,
  type Span,
  type SpanContext,
} from "@opentelemetry/api";
import { errorMessage } from "./error-message.js";

export { SpanKind };

export const TRACEPARENT = "traceparent";
export const TRACESTATE = "tracestate";

export type TracingMode = "off" | "propagate" | "export";

let mode: TracingMode = "off";

/** Set once by tracing.ts when a process sets tracing up. */
export function setTracingMode(next: TracingMode): void {
  mode = next;
}

export const tracingMode = (): TracingMode => mode;

const tracer = trace.getTracer("seckill");

/** The W3C headers of a context: what a call or message carries on. */
export interface TraceHeaders {
  traceparent?: string;
  tracestate?: string;
}

const headerGetter = {
  keys: (carrier: TraceHeaders) => Object.keys(carrier),
  get: (carrier: TraceHeaders, key: string) => (key === TRACEPARENT ? carrier.traceparent : key === TRACESTATE ? carrier.tracestate : undefined),
};

/**
 * The context a received call or message continues: its traceparent's, or a
 * new trace when exporting and it has none. undefined when there is nothing to
 * follow (tracing off, or no traceparent without an exporter).
 */
export function receivedContext(traceparent: string | undefined, tracestate?: string): Context | undefined {
  if (mode === "off" || (traceparent === undefined && mode === "propagate")) return undefined;
  if (traceparent === undefined) return ROOT_CONTEXT;
  const received = propagation.extract(ROOT_CONTEXT, { traceparent, tracestate }, headerGetter);
  // A malformed traceparent is not continued; exporting, the call starts a trace of its own.
  if (trace.getSpanContext(received) === undefined && mode === "propagate") return undefined;
  return received;
}

/** The active span's context, when there is a trace to follow. */
export function activeSpanContext(): SpanContext | undefined {
  if (mode === "off") return undefined;
  const spanContext = trace.getSpanContext(context.active());
  return spanContext && isSpanContextValid(spanContext) ? spanContext : undefined;
}

/** The trace and span ids of the active span, for log lines. */
export function activeTraceIds(): { traceId: string; spanId: string } | undefined {
  const spanContext = activeSpanContext();
  return spanContext && { traceId: spanContext.traceId, spanId: spanContext.spanId };
}

/** The headers that carry a context on. */
export function headersOf(ctx: Context): TraceHeaders {
  const headers: TraceHeaders = {};
  propagation.inject(ctx, headers, {
    set: (carrier, key, value) => {
      if (key === TRACEPARENT) carrier.traceparent = value;
      else if (key === TRACESTATE) carrier.tracestate = value;
    },
  });
  return headers;
}

export interface SpanOptions {
  kind: SpanKind;
  attributes?: Attributes;
  /** Other traces the span's work belongs to (the other purchases of a batch). */
  links?: Link[];
}

/**
 * Starts a span under `parent` (without an exporter, a non-recording one that
 * carries the parent's ids on) and returns the context it is active in.
 */
export function startSpan(name: string, parent: Context, options: SpanOptions): { span: Span; context: Context } {
  const span = tracer.startSpan(name, options, parent);
  return { span, context: trace.setSpan(parent, span) };
}

/** Ends a span, marked failed when the work failed. */
export function endSpan(span: Span, error?: unknown): void {
  if (error !== undefined && error !== null) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(error) });
  }
  span.end();
}

/**
 * Runs an outgoing call or publish in a child span of the active trace,
 * handing it the headers to send; with no trace to follow it runs as it is,
 * with no headers.
 */
export function withOutgoingSpan<T>(name: string, options: SpanOptions, send: (headers: TraceHeaders | undefined) => Promise<T>): Promise<T> {
  if (activeSpanContext() === undefined) return send(undefined);
  const { span, context: ctx } = startSpan(name, context.active(), options);
  return endedWith(
    span,
    context.with(ctx, () => send(headersOf(ctx))),
  );
}

/**
 * Runs work that serves several received items (a batch of messages or
 * purchases) in one span: the first item's trace is its parent, the others are
 * linked. Without any trace to follow it runs as it is.
 */
export function withBatchSpan<T>(name: string, received: (SpanContext | undefined)[], options: SpanOptions, work: () => Promise<T>): Promise<T> {
  if (mode === "off") return work();
  const traced = received.filter((c): c is SpanContext => c !== undefined);
  if (traced.length === 0 && mode === "propagate") return work();
  const parent = traced.length > 0 ? trace.setSpanContext(ROOT_CONTEXT, traced[0]) : ROOT_CONTEXT;
  const links = traced.length > 1 ? traced.slice(1).map((c) => ({ context: c })) : undefined;
  const { span, context: ctx } = startSpan(name, parent, { ...options, links: [...(options.links ?? []), ...(links ?? [])] });
  return endedWith(span, context.with(ctx, work));
}

/** The work's own outcome, once the span is ended with it (an error recorded on the span). */
function endedWith<T>(span: Span, work: Promise<T>): Promise<T> {
  return work.then(
    (value) => {
      endSpan(span);
      return value;
    },
    (error: unknown) => {
      endSpan(span, error ?? "failed");
      throw error;
    },
  );
}

/** The span context a received traceparent names, for withBatchSpan. */
export function receivedSpanContext(traceparent: string | undefined, tracestate?: string): SpanContext | undefined {
  if (mode === "off" || traceparent === undefined) return undefined;
  const spanContext = trace.getSpanContext(propagation.extract(ROOT_CONTEXT, { traceparent, tracestate }, headerGetter));
  return spanContext && isSpanContextValid(spanContext) ? spanContext : undefined;
}
