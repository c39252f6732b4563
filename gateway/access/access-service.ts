// The AccessService domain: challenges and purchase tokens. A token is issued
// only while the sale is open, to an eligible buyer, after a solved challenge
// when the sale asks for one; it lets that user buy in that sale for
// PURCHASE_TOKEN_TTL_MS. No gRPC types beyond the generated messages.
import { SalePhase, type GetChallengeResponse, type IssuePurchaseTokenRequest, type IssuePurchaseTokenResponse } from "@seckill/sdk";
import { isSaleId } from "../../services/common/ids.js";
import { invalid, refuse } from "../../services/common/refusal.js";
import { phaseOf } from "../../services/common/sale-window.js";
import { CHALLENGE_ID_RE, cryptoRandomInt, generateQuestion, newChallengeId, renderSvg, type ChallengeStore, type RandomInt } from "./challenge.js";
import { checkEligibility, type Buyer } from "./eligibility.js";
import { signPurchaseToken } from "./jwt.js";
import type { KeyRing } from "./keys.js";
import type { CachedSale, SaleCache } from "./sale-cache.js";

export interface AccessDeps {
  sales: SaleCache;
  challenges: ChallengeStore;
  keys: Pick<KeyRing, "signing">;
  now: () => Date;
  challengeTtlMs: number;
  tokenTtlMs: number;
  random?: RandomInt;
}

export const SVG_TYPE = "image/svg+xml";
const MAX_ANSWER_LENGTH = 64;

const PHASE_REFUSALS: Partial<Record<SalePhase, () => Error>> = {
  [SalePhase.SALE_PHASE_NOT_STARTED]: () => refuse("SALE_NOT_STARTED", "the sale has not started"),
  [SalePhase.SALE_PHASE_ENDED]: () => refuse("SALE_ENDED", "the sale has ended"),
  [SalePhase.SALE_PHASE_SOLD_OUT]: () => refuse("SOLD_OUT", "the sale is sold out"),
};

export function createAccessService(deps: AccessDeps) {
  const random = deps.random ?? cryptoRandomInt;

  async function saleFor(saleId: string): Promise<CachedSale> {
    if (!isSaleId(saleId)) throw invalid("sale_id", "26 characters of Crockford base32");
    const sale = await deps.sales.get(saleId);
    if (!sale) throw refuse("NOT_FOUND", `no sale ${saleId}`);
    return sale;
  }

  return {
    /** A new challenge for the buyer and the sale; refused for an ended sale or an ineligible buyer (no point solving it). */
    async getChallenge(buyer: Buyer, saleId: string): Promise<GetChallengeResponse> {
      const sale = await saleFor(saleId);
      const now = deps.now();
      // Sold out is read from Postgres's sold counter, which lags: let the buyer try.
      if (phaseOf(sale.row, 1, now) === SalePhase.SALE_PHASE_ENDED) throw refuse("SALE_ENDED", "the sale has ended");
      checkEligibility(sale.rules, buyer, now);
      const question = generateQuestion(random);
      const challengeId = newChallengeId();
      const expiresAtMs = now.getTime() + deps.challengeTtlMs;
      await deps.challenges.put(challengeId, { userId: buyer.userId, saleId, answer: question.answer, expiresAtMs }, deps.challengeTtlMs);
      return {
        challengeId,
        question: question.text,
        image: renderSvg(question.text, random),
        imageType: SVG_TYPE,
        expiresAt: new Date(expiresAtMs),
      };
    },

    /**
     * Checks, in order: the sale (exists, open: SALE_NOT_STARTED, SALE_ENDED,
     * SOLD_OUT by Postgres's sold counter), the buyer's eligibility, the
     * challenge when the sale requires one (used up by this check, right or
     * wrong); then signs the token with the current key.
     */
    async issuePurchaseToken(buyer: Buyer, req: IssuePurchaseTokenRequest): Promise<IssuePurchaseTokenResponse> {
      const sale = await saleFor(req.saleId);
      const now = deps.now();
      if (req.challengeId !== "" && !CHALLENGE_ID_RE.test(req.challengeId)) throw invalid("challenge_id", "an id from GetChallenge");
      if (req.challengeAnswer.length > MAX_ANSWER_LENGTH) throw invalid("challenge_answer", `at most ${MAX_ANSWER_LENGTH} characters`);
      const phase = phaseOf(sale.row, sale.row.total_stock - sale.row.sold, now);
      const closed = PHASE_REFUSALS[phase];
      if (closed) throw closed();
      checkEligibility(sale.rules, buyer, now);
      if (sale.rules.challengeRequired) {
        if (req.challengeId === "") throw refuse("CHALLENGE_REQUIRED", "the sale requires a challenge: answer one from GetChallenge");
        const check = await deps.challenges.check(req.challengeId, {
          userId: buyer.userId,
          saleId: req.saleId,
          answer: req.challengeAnswer,
          nowMs: now.getTime(),
        });
        if (!check.ok) throw refuse("CHALLENGE_FAILED", `challenge failed: ${check.why}; get a new one`);
      }
      const key = deps.keys.signing();
      const { token, claims } = signPurchaseToken(key, { userId: buyer.userId, saleId: req.saleId, nowMs: now.getTime(), ttlMs: deps.tokenTtlMs });
      return { token, expiresAt: new Date(claims.exp * 1000), keyId: key.kid };
    },
  };
}

export type AccessService = ReturnType<typeof createAccessService>;
