// Calling any method of a gRPC server without a typed client: by its
// definition (the generated serializers, so any field values a message can
// hold), or with raw bytes as the request body (a passthrough serializer, so
// the server sees exactly those bytes). Both resolve with how the call ended,
// never reject, so that fuzz tests can judge every outcome.
import { Client, credentials, Metadata, status, type MethodDefinition, type ServiceError } from "@grpc/grpc-js";
import { rejectionOf } from "@seckill/sdk";

export interface CallOutcome {
  code: status;
  details: string;
  /** The ErrorInfo reason of a refusal, when the server sent one. */
  reason?: string;
  /** The unary response, or every message of a server stream. */
  messages: unknown[];
}

// biome-ignore lint/suspicious/noExplicitAny: any method of the contract (its request and response types appear both as inputs and outputs)
export type AnyMethod = MethodDefinition<any, any>;

/** One plain grpc-js client per address (no service of its own: it calls paths). */
export const rawClient = (address: string): Client => new Client(address, credentials.createInsecure());

const passthrough = (bytes: Buffer): Buffer => bytes;

function outcomeOf(error: ServiceError | null, messages: unknown[]): CallOutcome {
  if (!error) return { code: status.OK, details: "", messages };
  const r = rejectionOf(error);
  return { code: error.code, details: error.details, reason: r.reason || undefined, messages };
}

/** Calls `method` (unary or server streaming) with `body` encoded by the method's own serializer, or as raw bytes. */
export function callMethod(
  client: Client,
  method: AnyMethod,
  body: { request: unknown } | { bytes: Uint8Array },
  metadata: Metadata = new Metadata(),
  deadlineMs = 5000,
): Promise<CallOutcome> {
  const raw = "bytes" in body;
  const serialize = (raw ? passthrough : method.requestSerialize) as (value: unknown) => Buffer;
  const argument = raw ? Buffer.from(body.bytes) : body.request;
  const deserialize = method.responseDeserialize as (bytes: Buffer) => unknown;
  const options = { deadline: Date.now() + deadlineMs };
  return new Promise((resolve) => {
    if (!method.responseStream) {
      client.makeUnaryRequest(method.path, serialize, deserialize, argument, metadata, options, (error, response) => resolve(outcomeOf(error, error ? [] : [response])));
      return;
    }
    const messages: unknown[] = [];
    const call = client.makeServerStreamRequest(method.path, serialize, deserialize, argument, metadata, options);
    call.on("data", (message: unknown) => messages.push(message));
    call.on("error", (error: ServiceError) => resolve(outcomeOf(error, messages)));
    call.on("end", () => resolve(outcomeOf(null, messages)));
  });
}

/** The size of the request as the method's serializer encodes it (to know when it is over the server's limit). */
export const encodedSize = (method: AnyMethod, request: unknown): number => (method.requestSerialize(request) as Buffer).length;
