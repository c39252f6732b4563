// Page tokens for newest-first lists: the last row's (created_at, id), opaque
// to clients. A token that does not parse is INVALID_ARGUMENT naming page_token.
import { invalid } from "./refusal.js";

export interface Cursor {
  createdAt: Date;
  id: string;
}

export function encodePageToken(last: Cursor): string {
  return Buffer.from(`${last.createdAt.getTime()}|${last.id}`).toString("base64url");
}

/** undefined for an empty token (the first page). */
export function decodePageToken(token: string, isId: (id: string) => boolean): Cursor | undefined {
  if (!token) return undefined;
  const decoded = Buffer.from(token, "base64url").toString();
  const sep = decoded.indexOf("|");
  const ms = decoded.slice(0, sep);
  const id = decoded.slice(sep + 1);
  // At most 15 digits: a longer number is no valid Date, which Postgres would refuse.
  if (sep < 0 || !/^\d{1,15}$/.test(ms) || !isId(id)) throw invalid("page_token", "not a token from this list");
  return { createdAt: new Date(Number(ms)), id };
}

/** Splits limit+1 fetched rows into the page and the next token. */
export function pageOf<Row extends { created_at: Date; id: string }>(rows: Row[], limit: number): { page: Row[]; nextPageToken: string } {
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return { page, nextPageToken: rows.length > limit && last ? encodePageToken({ createdAt: last.created_at, id: last.id }) : "" };
}

const PAGE_DEFAULT = 20;
const PAGE_MAX = 100;

/** Rows per page: 0 means the default; more than the maximum is INVALID_ARGUMENT. */
export function pageLimit(pageSize: number): number {
  if (!Number.isInteger(pageSize) || pageSize < 0 || pageSize > PAGE_MAX) throw invalid("page_size", `0 to ${PAGE_MAX}`);
  return pageSize || PAGE_DEFAULT;
}
