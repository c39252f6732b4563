// Structured logs: one JSON object per line on stderr, with the fields that let
// a reader follow a request (request, order and sale ids), and the trace and
// span ids of the trace the line was written in (trace-context.ts).
import { activeTraceIds } from "./trace-context.js";

type Level = "debug" | "info" | "warn" | "error";
const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** A line's fields, or a function that builds them only if the line is written (for lines on hot paths). */
export type LogFields = Record<string, unknown> | (() => Record<string, unknown>);

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: Record<string, unknown>): Logger;
}

/** The fields themselves, built if given as a function. */
export const fieldsOf = (fields: LogFields | undefined): Record<string, unknown> | undefined => (typeof fields === "function" ? fields() : fields);

export function createLogger(base: Record<string, unknown>, level: Level = "info", write: (line: string) => void = (line) => process.stderr.write(`${line}\n`)): Logger {
  const min = RANK[level];
  const emit = (lvl: Level, msg: string, fields?: LogFields) => {
    if (RANK[lvl] < min) return;
    const entry: Record<string, unknown> = { time: new Date().toISOString(), level: lvl, msg, ...base, ...activeTraceIds(), ...fieldsOf(fields) };
    if (entry.err instanceof Error) entry.err = { message: entry.err.message, stack: entry.err.stack };
    write(JSON.stringify(entry));
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (fields) => createLogger({ ...base, ...fields }, level, write),
  };
}

/** For tests: drops everything below error. */
export const quietLogger = (): Logger => createLogger({}, "error");
