// A call's trace over gRPC. Server side: a unary call continues the trace its
// `traceparent` metadata names (or starts one when spans are exported), its
// handler runs with that trace active, so every line it logs and every call or
// publish it makes carries it on, and its end is logged at debug level. Client
// side: the active trace is sent on as `traceparent` metadata, and a batched
// call (purchases merged into one Reserve) belongs to its first item's trace,
// linked to the others'.
import { context, type SpanContext } from "@opentelemetry/api";
import { Metadata, status, type sendUnaryData, type ServerUnaryCall, type ServiceDefinition, type UntypedServiceImplementation } from "@grpc/grpc-js";
import type { Logger } from "./log.js";
import {
  activeSpanContext,
  endSpan,
  headersOf,
  receivedContext,
  SpanKind,
  startSpan,
  TRACEPARENT,
  TRACESTATE,
  tracingMode,
  withBatchSpan,
  withOutgoingSpan,
  type TraceHeaders,
} from "./trace-context.js";

/** The one string value of a metadata key; undefined when absent, repeated or binary. */
function single(metadata: Metadata, key: string): string | undefined {
  const values = metadata.get(key);
  return values.length === 1 && typeof values[0] === "string" ? values[0] : undefined;
}

/** Status codes that mean the server failed (OpenTelemetry's gRPC conventions); refusals are answers. */
const SERVER_ERRORS = new Set<number>([status.UNKNOWN, status.DEADLINE_EXCEEDED, status.UNIMPLEMENTED, status.INTERNAL, status.UNAVAILABLE, status.DATA_LOSS]);

/** Wraps a service's unary handlers in a server span each; streams are left as they are. */
export function traceCalls(definition: ServiceDefinition, implementation: UntypedServiceImplementation, log: Logger): UntypedServiceImplementation {
  return Object.fromEntries(
    Object.entries(implementation).map(([name, handler]) => {
      const method = definition[name];
      if (!method || method.requestStream || method.responseStream) return [name, handler];
      const spanName = method.path.slice(1);
      const [service, rpc] = spanName.split("/");
      const unaryHandler = handler as (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => void;
      return [
        name,
        (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
          if (tracingMode() === "off") return unaryHandler(call, callback);
          const received = receivedContext(single(call.metadata, TRACEPARENT), single(call.metadata, TRACESTATE));
          if (!received) return unaryHandler(call, callback);
          const { span, context: active } = startSpan(spanName, received, {
            kind: SpanKind.SERVER,
            attributes: { "rpc.system": "grpc", "rpc.service": service, "rpc.method": rpc },
          });
          context.with(active, () =>
            unaryHandler(call, (error, ...rest) => {
              const code = error ? (error.code ?? status.UNKNOWN) : status.OK;
              span.setAttribute("rpc.grpc.status_code", code);
              endSpan(span, SERVER_ERRORS.has(code) ? (error?.details ?? "failed") : undefined);
              log.debug("call answered", { method: rpc, code: status[code] });
              callback(error, ...rest);
            }),
          );
        },
      ];
    }),
  );
}

/** The metadata that carries a trace on; undefined when there is none. */
function metadataOf(headers: TraceHeaders | undefined): Metadata | undefined {
  if (headers?.traceparent === undefined) return undefined;
  const metadata = new Metadata();
  metadata.set(TRACEPARENT, headers.traceparent);
  if (headers.tracestate) metadata.set(TRACESTATE, headers.tracestate);
  return metadata;
}

const clientSpan = (path: string) => {
  const [service, rpc] = path.split("/");
  return { kind: SpanKind.CLIENT, attributes: { "rpc.system": "grpc", "rpc.service": service, "rpc.method": rpc } };
};

/** A unary call in a client span of the active trace, sent with its traceparent ("pkg.Service/Method"). */
export function tracedCall<T>(path: string, call: (metadata: Metadata | undefined) => Promise<T>): Promise<T> {
  if (tracingMode() === "off") return call(undefined);
  return withOutgoingSpan(path, clientSpan(path), (headers) => call(metadataOf(headers)));
}

/**
 * A batched call's tracing: remember() notes the trace each item was added
 * in (nothing when there is none), run() makes the batch's call in a client
 * span under the first item's trace, linked to the others', with its traceparent.
 */
export function tracedBatchCall<I extends object, R>(path: string, call: (items: I[], metadata: Metadata | undefined) => Promise<R[]>) {
  const traces = new WeakMap<I, SpanContext>();
  const options = clientSpan(path);
  return {
    remember(item: I): I {
      const spanContext = activeSpanContext();
      if (spanContext) traces.set(item, spanContext);
      return item;
    },
    run(items: I[]): Promise<R[]> {
      if (tracingMode() === "off") return call(items, undefined);
      return withBatchSpan(
        path,
        items.map((item) => traces.get(item)),
        options,
        () => call(items, activeSpanContext() ? metadataOf(headersOf(context.active())) : undefined),
      );
    },
  };
}
