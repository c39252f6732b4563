// The one way domain code says "no": a Refusal carries a reason from the
// contract (reason.proto); grpc-errors.ts turns it into a status with details.
import type { ReasonName } from "@seckill/sdk";

export interface FieldViolation {
  field: string;
  description: string;
}

export class Refusal extends Error {
  constructor(
    readonly reason: ReasonName,
    message: string,
    readonly extra: { fieldViolations?: FieldViolation[]; retryDelayMs?: number } = {},
  ) {
    super(message);
    this.name = "Refusal";
  }
}

export const refuse = (reason: ReasonName, message: string): Refusal => new Refusal(reason, message);

/** INVALID_ARGUMENT naming the field, for malformed or out-of-range input. */
export const invalid = (field: string, description: string): Refusal => new Refusal("INVALID_ARGUMENT", `${field}: ${description}`, { fieldViolations: [{ field, description }] });

/** UNAVAILABLE with a retry hint: a dependency is down or the process is shedding load. */
export const overloaded = (message: string, retryDelayMs = 200): Refusal => new Refusal("OVERLOADED", message, { retryDelayMs });
