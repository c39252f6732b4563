// Calling the gateway's RateLimitService as Envoy's global rate limit filter
// does: a client from rateLimitServiceClient(), requests of descriptors made of
// entries, field names as in the Envoy protos.
import { Metadata, type CallOptions, type Client, type ServiceError } from "@grpc/grpc-js";
import type { RateLimitDescriptor, RateLimitResponse } from "../../gateway/ratelimit/envoy-protos.js";

export interface EnvoyRequest {
  domain: string;
  descriptors: RateLimitDescriptor[];
  hits_addend?: number;
}

/** The descriptor Envoy sends for a user (x-user-id). */
export const user = (id: string): RateLimitDescriptor => ({ entries: [{ key: "user_id", value: id }] });
/** The descriptor Envoy sends for a client address. */
export const address = (ip: string): RateLimitDescriptor => ({ entries: [{ key: "remote_address", value: ip }] });

/** The method a client from rateLimitServiceClient() has (proto-loader clients carry no types). */
interface RateLimitServiceClient {
  ShouldRateLimit(request: EnvoyRequest, metadata: Metadata, options: Partial<CallOptions>, callback: (error: ServiceError | null, response: RateLimitResponse) => void): void;
}

/** One ShouldRateLimit call; rejects with the gRPC error. */
export function shouldRateLimit(client: Client, request: EnvoyRequest, deadlineMs = 5000): Promise<RateLimitResponse> {
  return new Promise((resolve, reject) =>
    (client as unknown as RateLimitServiceClient).ShouldRateLimit(
      request,
      new Metadata(),
      { deadline: Date.now() + deadlineMs },
      (error: ServiceError | null, response: RateLimitResponse) => (error ? reject(error) : resolve(response)),
    ),
  );
}
