// What an error from Redis, Postgres or NATS means, decided in one place:
// a dependency that did not answer (the caller retries) or something about
// the request or the data (retrying the same thing fails the same way).
import { errorMessage } from "./error-message.js";

const NETWORK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "EHOSTUNREACH", "ENOTFOUND", "57P01", "57P03"]);
const DEPENDENCY_ERRORS = new Set([
  "ClusterAllFailedError",
  "MaxRetriesPerRequestError",
  "KnexTimeoutError",
  "TimeoutError",
  "ClosedConnectionError",
  "NoRespondersError",
  "ConnectionError",
]);
const DEPENDENCY_MESSAGES = /Connection is closed|enableOfflineQueue|Command timed out|Connection terminated|timeout exceeded when trying to connect|no responders/i;
// A Redis Cluster's answers while a slot moves or a failover is under way: the
// command was not run (MOVED and ASK name where to send it; ioredis follows
// them, but not for every command of an auto-pipelined batch that got mixed
// replies), or the node cannot run it yet. NOSCRIPT likewise: a promoted
// replica has no scripts loaded, and ioredis's fallback to EVAL is lost when
// it resends a redirected pipeline. Asked again, the command runs on the
// slot's new master (a new call loads the script).
const REDIS_NOT_READY_REPLIES = /^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|LOADING|READONLY|NOSCRIPT) /;

/** Redis, Postgres or NATS did not answer: the client should retry, not see INTERNAL. */
export function isDependencyFailure(error: unknown): boolean {
  const e = error as { code?: unknown; name?: unknown; message?: unknown } | undefined;
  if (!e || typeof e !== "object") return false;
  if (typeof e.code === "string" && (NETWORK_CODES.has(e.code) || e.code.startsWith("08"))) return true;
  if (typeof e.name === "string" && DEPENDENCY_ERRORS.has(e.name)) return true;
  return typeof e.message === "string" && (DEPENDENCY_MESSAGES.test(e.message) || REDIS_NOT_READY_REPLIES.test(e.message));
}

/** An error the Postgres server itself reported: it has a severity and a SQLSTATE. */
const isPostgresServerError = (error: unknown): error is { severity: string; code: string } =>
  typeof (error as { severity?: unknown })?.severity === "string" && typeof (error as { code?: unknown }).code === "string";

/**
 * Whether a failed Postgres write is an outage (worth retrying as it is)
 * rather than something wrong with what was written. Anything that is not an
 * error reported by the Postgres server (refused connection, pool timeout,
 * dropped socket) is an outage; so are the server's connection, resource,
 * shutdown, concurrency, lock, authorization and privilege errors.
 */
export function isPostgresOutage(error: unknown): boolean {
  if (!isPostgresServerError(error)) return true;
  return /^(08|28|3D|40|53|55|57|58)/.test(error.code) || error.code === "42501";
}

/**
 * How Postgres rejected what was written, when it did: a constraint (class 23)
 * or a value it cannot take (class 22, e.g. a NUL byte in a text). undefined
 * for an outage and for any other error.
 */
export function postgresRejection(error: unknown): "constraint" | "data" | undefined {
  if (isPostgresOutage(error)) return undefined;
  const code = (error as { code: string }).code;
  if (code.startsWith("23")) return "constraint";
  if (code.startsWith("22")) return "data";
  return undefined;
}

/** An error's message without the SQL text knex puts in front of Postgres's own. */
export function postgresMessage(error: unknown): string {
  const message = errorMessage(error);
  const own = /\s-\s([^\n]*)$/.exec(message);
  return typeof (error as { severity?: unknown })?.severity === "string" && own ? own[1] : message;
}
