// Every Seckill Mesh gRPC server is built here: bounded messages and metadata, grpc.health.v1
// (NOT_SERVING until the caller says its dependencies are up, and again on
// shutdown before draining), server reflection, and graceful shutdown.
import { setTimeout as sleep } from "node:timers/promises";
import {
  Server,
  ServerCredentials,
  status,
  type ServerWritableStream,
  type ServiceDefinition,
  type UntypedServiceImplementation,
  type ServerUnaryCall,
  type sendUnaryData,
} from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation, protoPath as healthProtoPath } from "grpc-health-check";
import { MAX_METADATA_BYTES } from "@seckill/sdk";
import { http2ServersOf, installAdmissionGate, type QuickAnswer } from "./admission.js";
import { assetPath } from "./assets.js";
import { errorStatus, type StatusObject } from "./grpc-errors.js";
import { traceCalls } from "./grpc-tracing.js";
import type { GrpcMetrics } from "./metrics.js";
import { invalid, Refusal } from "./refusal.js";
import type { Logger } from "./log.js";
import { errorMessage } from "./error-message.js";

export const PROTO_ROOT = assetPath("proto");
const PROTO_FILES = [
  "seckill/v1/sale.proto",
  "seckill/v1/inventory.proto",
  "seckill/v1/order.proto",
  "seckill/v1/events.proto",
  "seckill/v1/dead_letter.proto",
  "seckill/v1/access.proto",
];

export interface ServiceRegistration {
  /** Full name, e.g. "seckill.v1.OrderService": the name health reports under. */
  name: string;
  definition: ServiceDefinition;
  implementation: UntypedServiceImplementation;
  /** Where the service's types come from when not from proto/seckill/v1 (e.g. Envoy's protos), for reflection. */
  reflection?: protoLoader.PackageDefinition;
  /** By method (the definition's key): refusals answered from the request alone, before grpc-js (admission.ts). */
  quickAnswers?: Record<string, QuickAnswer>;
}

export interface GrpcServerOptions {
  address: string;
  services: ServiceRegistration[];
  maxMessageBytes: number;
  /** Largest request metadata accepted (see capMetadata); MAX_METADATA_BYTES unless set. */
  maxMetadataBytes?: number;
  /** Unary calls in progress beyond which new ones are refused at once, before grpc-js (UNAVAILABLE, OVERLOADED; admission.ts). */
  maxInFlight: number;
  log: Logger;
  /** Counts calls by method and code, unary latencies and refusals by reason. */
  metrics?: GrpcMetrics;
  /**
   * Closes each client connection after ageMs (±10 %) with a GOAWAY: calls in
   * progress get graceMs to finish, new ones go to a new connection, and a
   * balancing client resolves the name again and finds replicas added since.
   * Unset: connections live as long as their clients keep them.
   */
  maxConnectionAge?: { ageMs: number; graceMs: number };
}

export interface RunningGrpcServer {
  server: Server;
  port: number;
  /** Reports SERVING (dependencies connected) or NOT_SERVING for the whole server. */
  setServing(serving: boolean): void;
  /** NOT_SERVING, wait drainDelayMs, stop taking calls, let in-flight calls finish for up to graceMs, then cut them. */
  shutdown(opts: { drainDelayMs: number; graceMs: number }): Promise<void>;
}

let reflectionDefinition: protoLoader.PackageDefinition | undefined;
function loadReflectionDefinition(): protoLoader.PackageDefinition {
  reflectionDefinition ??= {
    ...protoLoader.loadSync(PROTO_FILES, { includeDirs: [PROTO_ROOT], keepCase: true }),
    ...protoLoader.loadSync(healthProtoPath, { keepCase: true }),
  };
  return reflectionDefinition;
}

export async function startGrpcServer(options: GrpcServerOptions): Promise<RunningGrpcServer> {
  const server = new Server({
    "grpc.max_receive_message_length": options.maxMessageBytes,
    "grpc.max_send_message_length": options.maxMessageBytes,
    "grpc.keepalive_time_ms": 30_000,
    "grpc.keepalive_timeout_ms": 10_000,
    "grpc.keepalive_permit_without_calls": 1,
    "grpc.http2.min_ping_interval_without_data_ms": 10_000,
    // A connection's streams are bounded, so memory stays flat: beyond the
    // limit the client queues, not the server. The admission gate, not this
    // limit, bounds the work (past maxInFlight it answers OVERLOADED), and the
    // limit leaves it room: from Node 22 on, a stream the client reset still
    // counts against the limit until the end of the event-loop turn (node:http2
    // drops it from its stream map in a setImmediate), and a stream over the
    // count is reset with ENHANCE_YOUR_CALM, which grpc-js clients report as
    // RESOURCE_EXHAUSTED and do not retry. With twice maxInFlight, a client
    // holding maxInFlight calls can cancel them all and open as many in the
    // same write (a proxy during a flood), and every new call is answered.
    "grpc.max_concurrent_streams": 2 * options.maxInFlight,
    ...(options.maxConnectionAge && {
      "grpc.max_connection_age_ms": options.maxConnectionAge.ageMs,
      "grpc.max_connection_age_grace_ms": options.maxConnectionAge.graceMs,
    }),
  });
  for (const service of options.services) {
    const implementation = traceCalls(service.definition, service.implementation, options.log);
    server.addService(tolerateMalformed(service.definition), options.metrics ? instrument(service.definition, implementation, options.metrics) : implementation);
  }

  const names = ["", ...options.services.map((s) => s.name)];
  const health = new HealthImplementation(Object.fromEntries(names.map((n) => [n, "NOT_SERVING"])));
  health.addToServer(server);
  // List only what this server serves: the definition holds every seckill.v1 service.
  const reflected = [...options.services.map((s) => s.name), "grpc.health.v1.Health"];
  // Reflection keeps the first file of each name (e.g. the google.protobuf types): a service's own, larger set first.
  const reflectedDefinition = Object.assign({}, ...options.services.map((s) => s.reflection ?? {}), loadReflectionDefinition());
  new ReflectionService(reflectedDefinition, { services: reflected }).addToServer(server);

  const unaryPaths = options.services.flatMap((s) =>
    Object.values(s.definition)
      .filter((m) => !m.requestStream && !m.responseStream)
      .map((m) => m.path),
  );
  const gatedMethods = new Map(options.metrics ? unaryPaths.map((path) => [path, options.metrics!.method(methodName(path))]) : []);

  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(options.address, ServerCredentials.createInsecure(), (error, boundPort) =>
      error ? reject(new Error(`cannot listen on ${options.address}: ${error.message}`)) : resolve(boundPort),
    ),
  );

  capMetadata(server, options.maxMetadataBytes ?? MAX_METADATA_BYTES);
  installAdmissionGate(server, {
    maxInFlight: options.maxInFlight,
    maxMessageBytes: options.maxMessageBytes,
    refusal: SHED,
    gatedPaths: new Set(unaryPaths),
    quickAnswers: new Map(options.services.flatMap((s) => Object.entries(s.quickAnswers ?? {}).map(([method, quick]) => [s.definition[method].path, quick] as const))),
    onRefused: (path, answer, seconds) => {
      gatedMethods.get(path)?.done(answer.code, seconds);
      options.metrics?.rejected(answer.reason);
    },
  });

  const setServing = (serving: boolean) => {
    for (const name of names) health.setStatus(name, serving ? "SERVING" : "NOT_SERVING");
  };

  let stopping: Promise<void> | undefined;
  const shutdown = (opts: { drainDelayMs: number; graceMs: number }) =>
    (stopping ??= (async () => {
      setServing(false);
      if (opts.drainDelayMs > 0) await sleep(opts.drainDelayMs);
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          options.log.warn("shutdown grace expired; cancelling in-flight calls");
          server.forceShutdown();
          resolve();
        }, opts.graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
    })());

  return { server, port, setServing, shutdown };
}

/**
 * Caps a call's request metadata. grpc-js has no such limit (it ignores
 * `grpc.max_metadata_size`); node:http2 has one: SETTINGS_MAX_HEADER_LIST_SIZE,
 * advertised to clients and enforced per stream. A header list over it
 * (names + values + 32 bytes per entry, pseudo-headers included) resets that
 * stream alone with ENHANCE_YOUR_CALM, which gRPC clients report as
 * RESOURCE_EXHAUSTED; the connection and its other calls go on. Without it
 * node:http2 takes any header list its HPACK decoder can read. What that
 * decoder cannot read (a field over 64 KiB HPACK-encoded, a block in more
 * than nine frames) closes the connection whatever the settings: the SDK
 * does not send it (proto/README.md, request metadata).
 */
function capMetadata(server: Server, maxBytes: number): void {
  for (const h2 of http2ServersOf(server)) h2.updateSettings({ maxHeaderListSize: maxBytes });
}

/**
 * A request whose bytes are not a valid protobuf message. grpc-js answers a
 * throwing deserializer with INTERNAL; handing the handler this marker instead
 * lets it answer INVALID_ARGUMENT like any other bad input.
 */
export class MalformedRequest {
  constructor(readonly problem: string) {}
}

function tolerateMalformed(definition: ServiceDefinition): ServiceDefinition {
  return Object.fromEntries(
    Object.entries(definition).map(([name, method]) => [
      name,
      {
        ...method,
        requestDeserialize: (bytes: Buffer) => {
          try {
            return method.requestDeserialize(bytes);
          } catch (error) {
            return new MalformedRequest(errorMessage(error));
          }
        },
      },
    ]),
  );
}

/** The answer to a call past the in-flight limit. */
export const SHED = new Refusal("OVERLOADED", "the server is at its limit of calls in progress; retry shortly with the same request id", {
  retryDelayMs: 50,
});

/** "/pkg.Service/Method" -> "Method", the `method` label. */
function methodName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

type Answer = Partial<StatusObject> | null | undefined;

/**
 * The one place calls are counted: each method's calls by status code when
 * they end (a server stream when it finishes, fails or is cancelled), the
 * duration of unary ones, and refusals by reason (the refusal a status was made
 * from, as grpc-errors.ts tags it). Calls the admission gate answers never
 * reach a handler: its onRefused counts them with the same series.
 */
function instrument(definition: ServiceDefinition, implementation: UntypedServiceImplementation, metrics: GrpcMetrics): UntypedServiceImplementation {
  return Object.fromEntries(
    Object.entries(implementation).map(([name, handler]) => {
      const method = definition[name];
      if (!method || method.requestStream) return [name, handler];
      const series = metrics.method(methodName(method.path));
      if (method.responseStream) {
        const streamHandler = handler as (call: ServerWritableStream<unknown, unknown>) => void;
        return [
          name,
          (call: ServerWritableStream<unknown, unknown>) => {
            let ended = false;
            const end = (code: number, reason?: string) => {
              if (ended) return;
              ended = true;
              series.done(code);
              if (reason) metrics.rejected(reason);
            };
            call.once("error", (error: Answer) => end(error?.code ?? status.UNKNOWN, error?.reason));
            call.once("finish", () => end(status.OK));
            call.once("cancelled", () => end(status.CANCELLED));
            streamHandler(call);
          },
        ];
      }
      const unaryHandler = handler as (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => void;
      return [
        name,
        (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
          const started = performance.now();
          unaryHandler(call, (error, ...rest) => {
            const answer = error as Answer;
            series.done(answer ? (answer.code ?? status.UNKNOWN) : status.OK, (performance.now() - started) / 1000);
            if (answer?.reason) metrics.rejected(answer.reason);
            callback(error, ...rest);
          });
        },
      ];
    }),
  );
}

/** Throws INVALID_ARGUMENT when the request could not be decoded. */
export function checkDecoded<Req>(request: Req): Req {
  if (request instanceof MalformedRequest) throw invalid("request", `not a valid protobuf message (${request.problem})`);
  return request;
}

/**
 * A grpc-js unary handler from a plain async function: the function gets the
 * request and the call (for metadata) and returns the response; whatever it
 * throws is mapped to a status in one place.
 */
export function unary<Req, Res>(log: Logger, method: string, fn: (request: Req, call: ServerUnaryCall<Req, Res>) => Promise<Res>) {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
    // Through a promise, so that a synchronous throw (e.g. userOf() in a
    // non-async handler) is mapped too, not answered UNKNOWN by grpc-js.
    new Promise<Res>((resolve) => resolve(fn(checkDecoded(call.request), call))).then(
      (response) => callback(null, response),
      (error: unknown) => callback(errorStatus(error, log, () => ({ method, ...idsOf(call.request) }))),
    );
  };
}

const LOGGED_IDS = ["requestId", "orderId", "saleId", "reservationId"] as const;

/** The ids a request carries (request, order, sale, reservation), for the lines logged about the call; never tokens. */
export function idsOf(request: unknown): Record<string, string> {
  const ids: Record<string, string> = {};
  if (typeof request !== "object" || request === null || request instanceof MalformedRequest) return ids;
  for (const key of LOGGED_IDS) {
    const value = (request as Record<string, unknown>)[key];
    if (typeof value === "string" && value !== "") ids[key] = value.length > 64 ? `${value.slice(0, 64)}…` : value;
  }
  return ids;
}
