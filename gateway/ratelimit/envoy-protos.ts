// Envoy's own rate limit service contract, loaded from the upstream .proto
// files vendored in ./vendor (rls.proto and what it imports; see
// vendor/README.md), so the gateway answers exactly the messages Envoy sends. Fields keep
// their proto names (keepCase: domain, descriptors[].entries[].key/value,
// hits_addend, overall_code, limit_remaining, duration_until_reset).
import { loadPackageDefinition, type ServiceClientConstructor, type ServiceDefinition } from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { assetPath } from "../../services/common/assets.js";

export const RATE_LIMIT_SERVICE = "envoy.service.ratelimit.v3.RateLimitService";
const RLS_PROTO = "envoy/service/ratelimit/v3/rls.proto";

const PROTO_DIR = assetPath("gateway", "ratelimit", "vendor");

let loaded: protoLoader.PackageDefinition | undefined;

/** The package definition of rls.proto and everything it imports (also what reflection lists). */
export function rateLimitPackage(): protoLoader.PackageDefinition {
  loaded ??= protoLoader.loadSync(RLS_PROTO, {
    includeDirs: [PROTO_DIR],
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  return loaded;
}

export function rateLimitServiceDefinition(): ServiceDefinition {
  return rateLimitPackage()[RATE_LIMIT_SERVICE] as unknown as ServiceDefinition;
}

/** A client of the service built from the same protos (what Envoy is, for tests and tools). */
export function rateLimitServiceClient(): ServiceClientConstructor {
  const root = loadPackageDefinition(rateLimitPackage()) as unknown as {
    envoy: { service: { ratelimit: { v3: { RateLimitService: ServiceClientConstructor } } } };
  };
  return root.envoy.service.ratelimit.v3.RateLimitService;
}

// The messages as proto-loader presents them (keepCase, enums as names).

export interface DescriptorEntry {
  key: string;
  value: string;
}

export interface RateLimitDescriptor {
  entries: DescriptorEntry[];
}

export interface RateLimitRequest {
  domain: string;
  descriptors: RateLimitDescriptor[];
  /** 0 (unset) counts as 1. */
  hits_addend: number;
}

export type RateLimitCode = "UNKNOWN" | "OK" | "OVER_LIMIT";
export type RateLimitUnitName = "SECOND" | "MINUTE" | "HOUR" | "DAY";

export interface DescriptorStatus {
  code: RateLimitCode;
  current_limit: { name: string; requests_per_unit: number; unit: RateLimitUnitName } | null;
  limit_remaining: number;
  duration_until_reset: { seconds: number; nanos: number } | null;
}

export interface RateLimitResponse {
  overall_code: RateLimitCode;
  statuses: DescriptorStatus[];
  response_headers_to_add: { key: string; value: string }[];
}
