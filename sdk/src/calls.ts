// Calling a generated grpc-js client as a promise, always with a deadline.
import { Metadata, status, type CallOptions, type Client, type ServiceError } from "@grpc/grpc-js";

/**
 * The most request metadata a Seckill Mesh server accepts by default, in bytes
 * as HTTP/2 counts a header list: each entry's name and value (binary values
 * base64-encoded) plus 32, gRPC's own headers included. The servers advertise
 * their cap (GRPC_MAX_METADATA_BYTES, at most this) as
 * SETTINGS_MAX_HEADER_LIST_SIZE and reset a call over it with ENHANCE_YOUR_CALM
 * (RESOURCE_EXHAUSTED), leaving the connection's other calls alone.
 */
export const MAX_METADATA_BYTES = 16 * 1024;

/**
 * RESOURCE_EXHAUSTED, as a server would answer, for metadata over
 * MAX_METADATA_BYTES; undefined when it fits. The SDK's calls check it before
 * sending: a header list too large for the server's HTTP/2 layer to even
 * decode (a field over 64 KiB once HPACK-encoded, or a block of more than
 * nine 16 KiB frames) makes it close the whole connection (GOAWAY), failing
 * every other call on the channel with INTERNAL.
 */
export function oversizedMetadata(metadata: Metadata): ServiceError | undefined {
  let bytes = 0;
  for (const [name, value] of Object.entries(metadata.toHttp2Headers())) {
    for (const v of Array.isArray(value) ? value : [value]) bytes += Buffer.byteLength(name) + Buffer.byteLength(String(v)) + 32;
  }
  if (bytes <= MAX_METADATA_BYTES) return undefined;
  const details = `request metadata of ${bytes} bytes is over the ${MAX_METADATA_BYTES}-byte limit; not sent`;
  return Object.assign(new Error(`${status.RESOURCE_EXHAUSTED} RESOURCE_EXHAUSTED: ${details}`), {
    code: status.RESOURCE_EXHAUSTED,
    details,
    metadata: new Metadata(),
  });
}

/** The metadata entry that names the buyer; set by the BFF after login. */
export const USER_ID_HEADER = "x-user-id";

/** The metadata entry naming the sale of a PlaceOrder, so the edge can rate-limit per sale without parsing the message. */
export const SALE_ID_HEADER = "x-sale-id";

/** The metadata entry carrying the purchase token from AccessService.IssuePurchaseToken. */
export const PURCHASE_TOKEN_HEADER = "x-purchase-token";

/**
 * The metadata entry in which the BFF passes the buyer's account creation time
 * (RFC 3339) to AccessService, for sales with a minimum account age. Trusted
 * like x-user-id: the edge strips it from external requests.
 */
export const ACCOUNT_CREATED_AT_HEADER = "x-account-created-at";

/** Metadata for a call made on behalf of a user. */
export function userMetadata(userId: string): Metadata {
  const metadata = new Metadata();
  metadata.set(USER_ID_HEADER, userId);
  return metadata;
}

/** Metadata for a PlaceOrder on behalf of a user: the user, the sale and, when there is one, the purchase token. */
export function purchaseMetadata(userId: string, saleId: string, token?: string): Metadata {
  const metadata = userMetadata(userId);
  metadata.set(SALE_ID_HEADER, saleId);
  if (token) metadata.set(PURCHASE_TOKEN_HEADER, token);
  return metadata;
}

type UnaryMethod<Req, Res> = (request: Req, metadata: Metadata, options: Partial<CallOptions>, callback: (error: ServiceError | null, response: Res) => void) => unknown;

type UnaryMethodNames<C> = {
  [K in keyof C]: C[K] extends UnaryMethod<never, unknown> ? K : never;
}[keyof C];

type RequestOf<M> = M extends UnaryMethod<infer Req, unknown> ? Req : never;
type ResponseOf<M> = M extends UnaryMethod<never, infer Res> ? Res : never;

/**
 * `await callUnary(orders, "placeOrder", request, { metadata, deadlineMs: 2000 })`.
 * Rejects with the grpc-js ServiceError; read it with rejectionOf(). Metadata
 * over MAX_METADATA_BYTES is not sent: RESOURCE_EXHAUSTED (oversizedMetadata).
 * Aborting `signal` cancels the call (CANCELLED).
 */
export function callUnary<C extends Client, K extends UnaryMethodNames<C>>(
  client: C,
  method: K,
  request: RequestOf<C[K]>,
  options: { metadata?: Metadata; deadlineMs?: number; signal?: AbortSignal } = {},
): Promise<ResponseOf<C[K]>> {
  const fn = client[method] as unknown as UnaryMethod<RequestOf<C[K]>, ResponseOf<C[K]>>;
  const metadata = options.metadata ?? new Metadata();
  const oversized = oversizedMetadata(metadata);
  if (oversized) return Promise.reject(oversized);
  const { signal } = options;
  return new Promise((resolve, reject) => {
    const call = fn.call(client, request, metadata, { deadline: Date.now() + (options.deadlineMs ?? 5000) }, (error, response) => {
      signal?.removeEventListener("abort", cancel);
      if (error) reject(error);
      else resolve(response);
    }) as { cancel(): void };
    const cancel = () => call.cancel();
    if (signal?.aborted) cancel();
    else signal?.addEventListener("abort", cancel, { once: true });
  });
}
