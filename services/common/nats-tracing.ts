// A trace over JetStream: a message is published with the active trace in its
// `traceparent` (and `tracestate`) header, in a producer span when spans are
// exported; a consumer reads the trace a delivered message belongs to.
import type { SpanContext } from "@opentelemetry/api";
import type { PubAck } from "@nats-io/jetstream";
import { headers, type MsgHdrs } from "@nats-io/transport-node";
import { receivedSpanContext, SpanKind, TRACEPARENT, TRACESTATE, tracingMode, withOutgoingSpan } from "./trace-context.js";

/** Publishes in a producer span of the active trace; `publish` gets the headers to send, none when there is no trace. */
export function tracedPublish(spanName: string, subject: string, publish: (hdrs: MsgHdrs | undefined) => Promise<PubAck>): Promise<PubAck> {
  if (tracingMode() === "off") return publish(undefined);
  const options = { kind: SpanKind.PRODUCER, attributes: { "messaging.system": "nats", "messaging.destination.name": subject, "messaging.operation.type": "send" } };
  return withOutgoingSpan(spanName, options, (trace) => {
    if (trace?.traceparent === undefined) return publish(undefined);
    const hdrs = headers();
    hdrs.set(TRACEPARENT, trace.traceparent);
    if (trace.tracestate) hdrs.set(TRACESTATE, trace.tracestate);
    return publish(hdrs);
  });
}

/** The trace a delivered message was published in; undefined when it carries none or tracing is off. */
export function messageTrace(msg: { headers?: MsgHdrs }): SpanContext | undefined {
  if (tracingMode() === "off" || !msg.headers) return undefined;
  // A missing header reads as "".
  return receivedSpanContext(msg.headers.get(TRACEPARENT) || undefined, msg.headers.get(TRACESTATE) || undefined);
}
