// Sets a process's tracing up (trace-context.ts uses it): the async context
// that carries the active trace through a call's awaits, W3C propagation, and,
// only when an OTLP endpoint is configured, the OpenTelemetry SDK exporting
// spans over OTLP/HTTP. Without an endpoint the SDK is not even loaded.
import { context, diag, DiagLogLevel, propagation, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { setTimeout as sleep } from "node:timers/promises";
import { errorMessage } from "./error-message.js";
import type { Logger } from "./log.js";
import { setTracingMode, tracingMode } from "./trace-context.js";

/** How long exiting waits for the last spans to be exported. */
const SHUTDOWN_EXPORT_MS = 2000;

export interface Tracing {
  /** Exports the spans still buffered, then stops exporting. */
  shutdown(): Promise<void>;
}

/** OTLP/HTTP's traces path under the configured endpoint (as the OTEL_EXPORTER_OTLP_ENDPOINT convention has it). */
export function tracesUrl(endpoint: string): string {
  return `${endpoint.replace(/\/+$/, "")}/v1/traces`;
}

export async function startTracing(serviceName: string, otlpEndpoint: string, log: Logger): Promise<Tracing> {
  if (tracingMode() !== "off") throw new Error("tracing is already set up in this process");
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  if (otlpEndpoint === "") {
    setTracingMode("propagate");
    return { shutdown: async () => undefined };
  }
  const [{ BasicTracerProvider, BatchSpanProcessor }, { resourceFromAttributes }, { OTLPTraceExporter }] = await Promise.all([
    import("@opentelemetry/sdk-trace-base"),
    import("@opentelemetry/resources"),
    import("@opentelemetry/exporter-trace-otlp-http"),
  ]);
  // The SDK's own complaints (an export the collector refused or missed) as log lines.
  diag.setLogger(
    {
      error: (message) => log.warn("tracing", { err: message }),
      warn: (message) => log.warn("tracing", { err: message }),
      info: () => undefined,
      debug: () => undefined,
      verbose: () => undefined,
    },
    DiagLogLevel.WARN,
  );
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ "service.name": serviceName }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: tracesUrl(otlpEndpoint) }))],
  });
  trace.setGlobalTracerProvider(provider);
  setTracingMode("export");
  const url = new URL(tracesUrl(otlpEndpoint));
  log.info("exporting traces", { url: `${url.origin}${url.pathname}` });
  return {
    // Bounded: a collector that does not answer must not hold the process's exit.
    shutdown: () =>
      Promise.race([
        provider.shutdown().catch((error: unknown) => log.warn("tracing: last spans not exported", { err: errorMessage(error) })),
        sleep(SHUTDOWN_EXPORT_MS, undefined, { ref: false }),
      ]),
  };
}
