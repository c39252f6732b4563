// Sales: creating, reading, opening and closing them, and the phase a sale is
// in. Postgres holds the sale; Redis holds a copy of its rules and the live
// stock count, loaded by sale-warmer.ts.
import { ReleasePolicy, type CreateSaleRequest, type GetSaleStatusResponse, type Sale, type SaleAccessRules } from "@seckill/sdk";
import type { Knex } from "knex";
import { isRequestId, isSaleId, isUserId, type IdSource } from "../common/ids.js";
import { decodePageToken, pageLimit, pageOf } from "../common/page-token.js";
import { invalid, overloaded, refuse } from "../common/refusal.js";
import * as repo from "./sale-repository.js";
import type { SaleRow, StoredAccessRules } from "./sale-repository.js";
import { phaseAt, windowEndMs } from "../common/sale-window.js";
import type { ReleasePolicyName, StockStore } from "./stock-store.js";

const MAX_SALE_LENGTH_MS = 30 * 24 * 3600 * 1000;
/** Most user ids in a sale's allow list, and in its block list. */
export const MAX_LISTED_USERS = 1000;
const MAX_MIN_ACCOUNT_AGE_SECONDS = 3650 * 24 * 3600;

export interface SaleServiceDeps {
  db: Knex;
  stock: Pick<StockStore, "live" | "setRules" | "close">;
  /** Loads sales into Redis from Postgres: see sale-warmer.ts. */
  warmer: {
    warm(row: SaleRow): Promise<{ loaded: boolean; stockLeft: number }>;
    /** False when the sale does not exist. */
    warmOnDemand(saleId: string): Promise<boolean>;
  };
  now: () => Date;
  newSaleId: IdSource;
}

export function validateCreateSale(req: CreateSaleRequest): repo.NewSale {
  if (!isRequestId(req.requestId)) throw invalid("request_id", "1 to 64 characters of [A-Za-z0-9._:-]");
  const name = req.name.trim();
  // Characters as Postgres counts them (code points, not UTF-16 units); NUL cannot be stored at all.
  const nameLength = [...name].length;
  if (nameLength < 1 || nameLength > 200) throw invalid("name", "1 to 200 characters");
  if (name.includes("\u0000")) throw invalid("name", "must not contain NUL characters");
  if (!Number.isInteger(req.totalStock) || req.totalStock < 1 || req.totalStock > 1_000_000) throw invalid("total_stock", "1 to 1,000,000");
  if (!Number.isSafeInteger(req.priceMinor) || req.priceMinor < 0 || req.priceMinor > 1e12) throw invalid("price_minor", "0 to 1,000,000,000,000");
  if (!/^[A-Z]{3}$/.test(req.currency)) throw invalid("currency", "three upper-case letters (ISO 4217)");
  if (!req.startsAt || Number.isNaN(req.startsAt.getTime())) throw invalid("starts_at", "required");
  if (!req.endsAt || Number.isNaN(req.endsAt.getTime())) throw invalid("ends_at", "required");
  if (req.endsAt <= req.startsAt) throw invalid("ends_at", "must be after starts_at");
  if (req.endsAt.getTime() - req.startsAt.getTime() > MAX_SALE_LENGTH_MS) throw invalid("ends_at", "at most 30 days after starts_at");
  const perUserLimit = req.perUserLimit === 0 ? 1 : req.perUserLimit;
  if (perUserLimit < 1 || perUserLimit > 100) throw invalid("per_user_limit", "1 to 100");
  const window = req.paymentWindowSeconds === 0 ? 900 : req.paymentWindowSeconds;
  if (window < 60 || window > 604_800) throw invalid("payment_window_seconds", "60 to 604,800");
  const releasePolicy = releasePolicyName(req.releasePolicy);
  if (!releasePolicy) throw invalid("release_policy", "RELEASE_POLICY_RESTORE_ALLOWANCE, RELEASE_POLICY_KEEP_ALLOWANCE or unspecified (restore)");
  const accessRules = validateAccessRules(req.accessRules);
  return {
    id: "",
    create_request_id: req.requestId,
    name,
    total_stock: req.totalStock,
    price_minor: req.priceMinor,
    currency: req.currency,
    starts_at: req.startsAt,
    ends_at: req.endsAt,
    per_user_limit: perUserLimit,
    payment_window_seconds: window,
    release_policy: releasePolicy,
    access_rules: accessRules,
  };
}

/** CreateSale's access rules as stored: bounded, de-duplicated lists of valid user ids; whole seconds of account age. */
export function validateAccessRules(rules: SaleAccessRules | undefined): StoredAccessRules {
  if (!rules) return {};
  const users = (field: string, ids: string[]): string[] => {
    if (ids.length > MAX_LISTED_USERS) throw invalid(field, `at most ${MAX_LISTED_USERS} user ids`);
    for (const id of ids) if (!isUserId(id)) throw invalid(field, "user ids of 1 to 64 characters of [A-Za-z0-9._:@-]");
    return [...new Set(ids)];
  };
  const allowed = users("access_rules.allowed_users", rules.allowedUsers);
  const blocked = users("access_rules.blocked_users", rules.blockedUsers);
  const age = rules.minAccountAge;
  let minAgeSeconds = 0;
  if (age) {
    const { seconds, nanos } = age;
    if (!Number.isSafeInteger(seconds) || !Number.isInteger(nanos) || seconds < 0 || nanos < 0 || nanos > 999_999_999 || seconds > MAX_MIN_ACCOUNT_AGE_SECONDS) {
      throw invalid("access_rules.min_account_age", "0 to 3,650 days");
    }
    minAgeSeconds = seconds + (nanos > 0 ? 1 : 0);
    if (minAgeSeconds > MAX_MIN_ACCOUNT_AGE_SECONDS) throw invalid("access_rules.min_account_age", "0 to 3,650 days");
  }
  const stored: StoredAccessRules = {};
  if (rules.challengeRequired) stored.challenge_required = true;
  if (allowed.length > 0) stored.allowed_users = allowed;
  if (blocked.length > 0) stored.blocked_users = blocked;
  if (minAgeSeconds > 0) stored.min_account_age_seconds = minAgeSeconds;
  return stored;
}

/** A sale's stored access rules in the contract's shape (every field set). */
export function toAccessRules(stored: StoredAccessRules | null | undefined): SaleAccessRules {
  const seconds = stored?.min_account_age_seconds ?? 0;
  return {
    challengeRequired: stored?.challenge_required === true,
    allowedUsers: stored?.allowed_users ?? [],
    blockedUsers: stored?.blocked_users ?? [],
    minAccountAge: seconds > 0 ? { seconds, nanos: 0 } : undefined,
  };
}

/** The stored policy for a CreateSale value (UNSPECIFIED means RESTORE); undefined for a value the API does not define. */
export function releasePolicyName(policy: ReleasePolicy): ReleasePolicyName | undefined {
  switch (policy) {
    case ReleasePolicy.RELEASE_POLICY_UNSPECIFIED:
    case ReleasePolicy.RELEASE_POLICY_RESTORE_ALLOWANCE:
      return "RESTORE";
    case ReleasePolicy.RELEASE_POLICY_KEEP_ALLOWANCE:
      return "KEEP";
    default:
      return undefined;
  }
}

const RELEASE_POLICIES: Record<ReleasePolicyName, ReleasePolicy> = {
  RESTORE: ReleasePolicy.RELEASE_POLICY_RESTORE_ALLOWANCE,
  KEEP: ReleasePolicy.RELEASE_POLICY_KEEP_ALLOWANCE,
};

export function toSale(row: SaleRow): Sale {
  return {
    saleId: row.id,
    name: row.name,
    totalStock: row.total_stock,
    priceMinor: row.price_minor,
    currency: row.currency,
    startsAt: row.starts_at,
    endsAt: row.ends_at,
    perUserLimit: row.per_user_limit,
    paymentWindowSeconds: row.payment_window_seconds,
    releasePolicy: RELEASE_POLICIES[row.release_policy],
    accessRules: toAccessRules(row.access_rules),
    closedAt: row.closed_at ?? undefined,
    createdAt: row.created_at,
    sold: row.sold,
  };
}

const noSale = (saleId: string) => refuse("NOT_FOUND", `no sale ${saleId}`);

function checkSaleId(saleId: string): void {
  if (!isSaleId(saleId)) throw invalid("sale_id", "26 characters of Crockford base32");
}

export function createSaleService(deps: SaleServiceDeps) {
  const { db, stock, warmer } = deps;

  async function existingSale(saleId: string): Promise<SaleRow> {
    checkSaleId(saleId);
    const row = await repo.findSale(db, saleId);
    if (!row) throw noSale(saleId);
    return row;
  }

  return {
    async create(req: CreateSaleRequest): Promise<Sale> {
      const draft = validateCreateSale(req);
      const row = await repo.insertSale(db, { ...draft, id: deps.newSaleId() });
      await warmer.warm(row);
      return toSale(row);
    },

    async get(saleId: string): Promise<Sale> {
      return toSale(await existingSale(saleId));
    },

    async list(pageSize: number, pageToken: string): Promise<{ sales: Sale[]; nextPageToken: string }> {
      const limit = pageLimit(pageSize);
      const after = decodePageToken(pageToken, isSaleId);
      const { page, nextPageToken } = pageOf(await repo.listSales(db, limit + 1, after), limit);
      return { sales: page.map(toSale), nextPageToken };
    },

    /** Answered from Redis alone (the endpoint every waiting buyer polls); Postgres only for a cold sale. */
    async status(saleId: string): Promise<GetSaleStatusResponse> {
      checkSaleId(saleId);
      let live = await stock.live(saleId);
      if (!live.warm) {
        if (!(await warmer.warmOnDemand(saleId))) throw noSale(saleId);
        live = await stock.live(saleId);
        if (!live.warm) throw overloaded("the sale could not be loaded; retry");
      }
      const now = deps.now();
      return {
        saleId,
        phase: phaseAt(live, live.stockLeft, now.getTime()),
        serverTime: now,
        startsAt: new Date(live.startsAtMs),
        endsAt: new Date(windowEndMs(live)),
        stockLeft: live.stockLeft,
        totalStock: live.totalStock,
      };
    },

    async open(saleId: string): Promise<Sale> {
      const before = await existingSale(saleId);
      const now = deps.now();
      if (before.closed_at || now >= before.ends_at) throw refuse("SALE_NOT_MODIFIABLE", `sale ${saleId} has ended`);
      const row = (await repo.openSale(db, saleId, now)) ?? before;
      await stock.setRules(saleId, { startsAtMs: row.starts_at.getTime() });
      return toSale(row);
    },

    /**
     * Enforces first, records second: Redis, where purchases are decided,
     * closes the sale and says when that took effect (no reservation is
     * later), and Postgres records that time. A sale Redis does not hold is
     * loaded first (it sells nothing meanwhile).
     */
    async close(saleId: string): Promise<Sale> {
      const before = await existingSale(saleId);
      const nowMs = () => before.closed_at?.getTime() ?? deps.now().getTime();
      let closedAtMs = await stock.close(saleId, nowMs());
      if (closedAtMs === 0) {
        if (!(await warmer.warmOnDemand(saleId))) throw noSale(saleId);
        closedAtMs = await stock.close(saleId, nowMs());
        if (closedAtMs === 0) throw overloaded("the sale is being loaded into Redis; retry");
      }
      return toSale((await repo.closeSale(db, saleId, new Date(closedAtMs)))!);
    },

    /** WarmSale: loads the sale into Redis unless it is there (rebuilding a lost one first). */
    async warm(saleId: string) {
      const result = await warmer.warm(await existingSale(saleId));
      return { saleId, loaded: result.loaded, stockLeft: result.stockLeft };
    },
  };
}

export type SaleService = ReturnType<typeof createSaleService>;
