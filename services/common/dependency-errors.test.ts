// Which errors mean a dependency did not answer (retry) and which mean
// something about the data (retrying the same write fails the same way).
import { describe, expect, it } from "vitest";
import { isDependencyFailure, isPostgresOutage, postgresMessage, postgresRejection } from "./dependency-errors.js";

const pg = (code: string, message = `pg ${code}`) => Object.assign(new Error(message), { severity: "ERROR", code });

describe("isDependencyFailure", () => {
  it("recognises Redis, Postgres and NATS not answering", () => {
    const failures = [
      Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }),
      new Error("Connection is closed."),
      Object.assign(new Error("closed"), { name: "ClosedConnectionError" }),
      new Error("503 no responders available"),
      pg("57P03"),
      pg("08006"),
    ];
    for (const error of failures) expect(isDependencyFailure(error)).toBe(true);
  });

  it("takes a Redis Cluster's redirections and failover replies, and a missing script, for a dependency not answering yet", () => {
    const replies = [
      "MOVED 6020 127.0.0.1:31361",
      "ASK 6020 127.0.0.1:31361",
      "TRYAGAIN Multiple keys request during rehashing of slot",
      "CLUSTERDOWN The cluster is down",
      "NOSCRIPT No matching script. Please use EVAL.",
    ];
    for (const message of replies) expect(isDependencyFailure(Object.assign(new Error(message), { name: "ReplyError" }))).toBe(true);
    expect(isDependencyFailure(Object.assign(new Error("ERR unknown command"), { name: "ReplyError" }))).toBe(false);
  });

  it("does not take a bug or a data error for one", () => {
    expect(isDependencyFailure(new TypeError("x is undefined"))).toBe(false);
    expect(isDependencyFailure(pg("23505"))).toBe(false);
    expect(isDependencyFailure("weird")).toBe(false);
  });
});

describe("isPostgresOutage", () => {
  it("treats connection failures, pool timeouts and unknown errors as outages", () => {
    expect(isPostgresOutage(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }))).toBe(true);
    expect(isPostgresOutage(Object.assign(new Error("write EPIPE"), { code: "EPIPE" }))).toBe(true);
    expect(isPostgresOutage(new Error("Knex: Timeout acquiring a connection"))).toBe(true);
    expect(isPostgresOutage("weird")).toBe(true);
  });

  it("treats Postgres's connection, resource, shutdown, lock, auth and privilege errors as outages", () => {
    for (const code of ["08006", "53300", "57P01", "40001", "40P01", "55P03", "28P01", "3D000", "42501"]) expect(isPostgresOutage(pg(code))).toBe(true);
  });

  it("treats constraint, data and other server errors as not outages", () => {
    for (const code of ["23505", "23514", "22021", "22003", "P0001", "42P01", "XX000"]) expect(isPostgresOutage(pg(code))).toBe(false);
  });
});

describe("postgresRejection", () => {
  it("names constraint (class 23) and data (class 22) errors, and nothing else", () => {
    expect(postgresRejection(pg("23505"))).toBe("constraint");
    expect(postgresRejection(pg("23514"))).toBe("constraint");
    expect(postgresRejection(pg("22021"))).toBe("data");
    for (const error of [pg("42P01"), pg("40001"), pg("08006"), Object.assign(new Error("x"), { code: "23505" }), "weird"]) {
      expect(postgresRejection(error)).toBeUndefined();
    }
  });
});

describe("postgresMessage", () => {
  it("drops the SQL text knex puts in front of the server's message", () => {
    expect(postgresMessage(pg("22021", 'insert into "orders" values ($1) - invalid byte sequence for encoding "UTF8": 0x00'))).toBe(
      'invalid byte sequence for encoding "UTF8": 0x00',
    );
    expect(postgresMessage(new Error("a - b"))).toBe("a - b");
    expect(postgresMessage("weird")).toBe("weird");
  });
});
