import { describe, expect, it } from "vitest";
import { status } from "@grpc/grpc-js";
import { rejectionOf } from "@seckill/sdk";
import { createLogger } from "./log.js";
import { errorStatus } from "./grpc-errors.js";
import { invalid, refuse } from "./refusal.js";

const lines: string[] = [];
const log = createLogger({}, "debug", (line) => lines.push(line));

describe("errorStatus", () => {
  it("keeps a refusal's code, reason and field", () => {
    const s = errorStatus(invalid("quantity", "1 to 100"), log);
    const r = rejectionOf({ code: s.code!, details: s.details!, metadata: s.metadata! });
    expect(r).toMatchObject({ code: status.INVALID_ARGUMENT, reason: "INVALID_ARGUMENT" });
    expect(r.fieldViolations).toEqual([{ field: "quantity", description: "1 to 100" }]);
    expect(errorStatus(refuse("SOLD_OUT", "gone"), log).code).toBe(status.FAILED_PRECONDITION);
  });

  it("turns a dependency that did not answer into UNAVAILABLE with a retry hint", () => {
    for (const error of [
      Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:6379"), { code: "ECONNREFUSED" }),
      new Error("Stream isn't writeable and enableOfflineQueue options is false"),
      Object.assign(new Error("terminating connection due to administrator command"), { code: "57P01" }),
      Object.assign(new Error("Knex: Timeout acquiring a connection"), { name: "KnexTimeoutError" }),
    ]) {
      const s = errorStatus(error, log);
      const r = rejectionOf({ code: s.code!, details: s.details!, metadata: s.metadata! });
      expect(r).toMatchObject({ code: status.UNAVAILABLE, reason: "OVERLOADED" });
      expect(r.retryDelayMs).toBeGreaterThan(0);
    }
  });

  it("answers anything else INTERNAL with a generic message and logs it", () => {
    lines.length = 0;
    const s = errorStatus(new TypeError("x is undefined"), log, { method: "PlaceOrder" });
    expect(s).toMatchObject({ code: status.INTERNAL, details: "internal error" });
    expect(lines.join("\n")).toMatch(/x is undefined/);
  });

  it("builds a refusal's logged context only when the debug line is written", () => {
    let built = 0;
    const context = () => {
      built++;
      return { method: "PlaceOrder", requestId: "r-1" };
    };
    errorStatus(
      refuse("SOLD_OUT", "gone"),
      createLogger({}, "info", () => undefined),
      context,
    );
    expect(built).toBe(0);
    const debugLines: string[] = [];
    errorStatus(
      refuse("SOLD_OUT", "gone"),
      createLogger({}, "debug", (line) => debugLines.push(line)),
      context,
    );
    expect(built).toBe(1);
    expect(JSON.parse(debugLines[0])).toMatchObject({ msg: "call refused", method: "PlaceOrder", requestId: "r-1", reason: "SOLD_OUT" });
  });
});
