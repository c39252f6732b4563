// Which write failures the writer treats as outages (retried in place, no
// delivery spent) and which as something wrong with the events.
import { describe, expect, it } from "vitest";
import { isTransient } from "./order-writer.js";

const pg = (code: string) => Object.assign(new Error(`pg ${code}`), { severity: "ERROR", code });

describe("isTransient", () => {
  it("treats connection failures, pool timeouts and unknown errors as outages", () => {
    expect(isTransient(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }))).toBe(true);
    expect(isTransient(Object.assign(new Error("write EPIPE"), { code: "EPIPE" }))).toBe(true);
    expect(isTransient(new Error("Knex: Timeout acquiring a connection"))).toBe(true);
    expect(isTransient("weird")).toBe(true);
  });

  it("treats Postgres's connection, resource, shutdown, lock, auth and privilege errors as outages", () => {
    for (const code of ["08006", "53300", "57P01", "40001", "40P01", "55P03", "28P01", "3D000", "42501"]) expect(isTransient(pg(code))).toBe(true);
  });

  it("treats constraint, data and other server errors as not outages", () => {
    for (const code of ["23505", "23514", "22021", "22003", "P0001", "42P01", "XX000"]) expect(isTransient(pg(code))).toBe(false);
  });
});
