import { describe, expect, it } from "vitest";
import { Metadata, status } from "@grpc/grpc-js";
import { rejectionMetadata } from "@seckill/sdk";
import { describeError, probeProblem } from "./backend.js";

const grpcError = (code: status, details: string, metadata = new Metadata()) => Object.assign(new Error(details), { code, details, metadata });

describe("probeProblem", () => {
  it("accepts any answer from the service itself", () => {
    expect(probeProblem("inventory", "x:1", undefined)).toBeUndefined();
    expect(probeProblem("inventory", "x:1", grpcError(status.NOT_FOUND, "no sale"))).toBeUndefined();
    expect(probeProblem("order", "x:1", grpcError(status.INVALID_ARGUMENT, "order_id"))).toBeUndefined();
  });

  it("tells how to start the backend when nothing answers", () => {
    for (const code of [status.UNAVAILABLE, status.DEADLINE_EXCEEDED]) {
      expect(probeProblem("order", "127.0.0.1:50052", grpcError(code, "No connection established"))).toBe(
        "cannot reach the order service at 127.0.0.1:50052 — is the backend running? start it with: npm start (or point --order at it)",
      );
    }
    expect(probeProblem("gateway", "127.0.0.1:50054", grpcError(status.UNAVAILABLE, "No connection established"))).toBe(
      "cannot reach the gateway at 127.0.0.1:50054 — is the backend running? start it with: npm start (or point --gateway at it)",
    );
  });

  it("tells a down dependency and a wrong address apart", () => {
    const overloaded = grpcError(status.UNAVAILABLE, "redis down", rejectionMetadata(status.UNAVAILABLE, "redis down", "OVERLOADED", { retryDelayMs: 500 }));
    expect(probeProblem("inventory", "h:1", overloaded)).toMatch(/answers but a dependency is down/);
    expect(probeProblem("order", "h:1", grpcError(status.UNIMPLEMENTED, "unknown service"))).toBe(
      "h:1 does not serve seckill.v1.OrderService — is --order the order service's address?",
    );
    expect(probeProblem("gateway", "h:1", grpcError(status.UNIMPLEMENTED, "unknown service"))).toBe(
      "h:1 does not serve seckill.v1.AccessService — is --gateway the gateway's address?",
    );
    expect(probeProblem("writer", "h:1", grpcError(status.UNIMPLEMENTED, "unknown service"))).toBe(
      "h:1 does not serve seckill.v1.DeadLetterService — is --writer the order writer's address?",
    );
  });
});

describe("describeError", () => {
  it("names the code and the reason", () => {
    const e = grpcError(status.FAILED_PRECONDITION, "the sale is sold out", rejectionMetadata(status.FAILED_PRECONDITION, "the sale is sold out", "SOLD_OUT"));
    expect(describeError(e)).toBe("FAILED_PRECONDITION (SOLD_OUT): the sale is sold out");
    expect(describeError(grpcError(status.NOT_FOUND, "no sale X", rejectionMetadata(status.NOT_FOUND, "no sale X", "NOT_FOUND")))).toBe("NOT_FOUND: no sale X");
  });
});
