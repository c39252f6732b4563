// A real grpc-js server on loopback whose unary methods answer from a script:
// each call takes the next answer of its method (a response, or an error sent
// with its code, message and trailers, as a service or Envoy would send it).
// Streaming methods and unscripted calls answer UNIMPLEMENTED.
import { Metadata, Server, ServerCredentials, status, type ServiceDefinition, type ServiceError, type UntypedServiceImplementation } from "@grpc/grpc-js";
import { AccessServiceService, OrderServiceService, SaleServiceService, rejectionMetadata } from "@seckill/sdk";

export interface Received {
  /** The method's name as in the generated client ("placeOrder"). */
  method: string;
  // biome-ignore lint/suspicious/noExplicitAny: the request of whichever method was called; a test reads the fields of the one it called
  request: any;
  metadata: Metadata;
}

/** An answer that never comes: the call waits for its deadline, or its cancellation. */
export const NO_ANSWER = Symbol("no answer");

export type Answer = object | ServiceError | typeof NO_ANSWER;

export interface ScriptedServer {
  address: string;
  /** Every call, in arrival order. */
  received: Received[];
  stop(): Promise<void>;
}

/** An error as grpc-js delivers it: with a reason, the details trailer a service sends; `headers` as Envoy adds them. */
export function grpcError(code: status, details: string, reason?: string, extra: { retryDelayMs?: number; headers?: Record<string, string> } = {}): ServiceError {
  const metadata = reason ? rejectionMetadata(code, details, reason, { retryDelayMs: extra.retryDelayMs }) : new Metadata();
  for (const [name, value] of Object.entries(extra.headers ?? {})) metadata.set(name, value);
  return Object.assign(new Error(details), { code, details, metadata });
}

const isError = (answer: object): answer is ServiceError => answer instanceof Error && typeof (answer as ServiceError).code === "number";

export async function startScriptedServer(script: Record<string, Answer[]>): Promise<ScriptedServer> {
  const received: Received[] = [];
  const server = new Server();
  for (const definition of [SaleServiceService, AccessServiceService, OrderServiceService] as ServiceDefinition[]) {
    const handlers: UntypedServiceImplementation = {};
    for (const [method, d] of Object.entries(definition)) {
      if (d.requestStream || d.responseStream) continue;
      handlers[method] = (call: { request: unknown; metadata: Metadata }, callback: (error: ServiceError | null, response?: unknown) => void) => {
        received.push({ method, request: call.request, metadata: call.metadata });
        const answer = script[method]?.shift();
        if (answer === NO_ANSWER) return;
        if (answer === undefined) callback(grpcError(status.UNIMPLEMENTED, `no answer scripted for ${method}`));
        else if (isError(answer)) callback(answer);
        else callback(null, answer);
      };
    }
    server.addService(definition, handlers);
  }
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  return {
    address: `127.0.0.1:${port}`,
    received,
    // Calls left unanswered would hold a graceful shutdown.
    stop: async () => server.forceShutdown(),
  };
}
