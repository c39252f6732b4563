// gRPC handlers of AccessService: identify the buyer (x-user-id, and the
// account's creation time from x-account-created-at), call the domain.
import type { Metadata } from "@grpc/grpc-js";
import { ACCOUNT_CREATED_AT_HEADER, AccessServiceService, type AccessServiceServer } from "@seckill/sdk";
import { unary, type ServiceRegistration } from "../../services/common/grpc-server.js";
import type { Logger } from "../../services/common/log.js";
import type { GatewayMetrics } from "../../services/common/metrics.js";
import { invalid } from "../../services/common/refusal.js";
import { userOf } from "../../services/common/caller.js";
import type { AccessService } from "./access-service.js";
import { parseRfc3339, type Buyer } from "./eligibility.js";

export function buyerOf(metadata: Metadata): Buyer {
  const userId = userOf(metadata);
  const values = metadata.get(ACCOUNT_CREATED_AT_HEADER);
  if (values.length === 0) return { userId, accountCreatedAt: undefined };
  const accountCreatedAt = values.length === 1 && typeof values[0] === "string" ? parseRfc3339(values[0]) : undefined;
  if (!accountCreatedAt) throw invalid(ACCOUNT_CREATED_AT_HEADER, "one RFC 3339 time, e.g. 2024-05-01T12:00:00Z");
  return { userId, accountCreatedAt };
}

export function accessServiceRegistration(access: AccessService, log: Logger, metrics?: GatewayMetrics): ServiceRegistration {
  const implementation: AccessServiceServer = {
    getChallenge: unary(log, "GetChallenge", (req, call) => access.getChallenge(buyerOf(call.metadata), req.saleId)),
    issuePurchaseToken: unary(log, "IssuePurchaseToken", async (req, call) => {
      const issued = await access.issuePurchaseToken(buyerOf(call.metadata), req);
      metrics?.tokenIssued();
      return issued;
    }),
  };
  return { name: "seckill.v1.AccessService", definition: AccessServiceService, implementation };
}
