// Who is calling: the x-user-id metadata entry the BFF sets after login, read
// the same way by the order service and the gateway's AccessService.
import type { Metadata } from "@grpc/grpc-js";
import { USER_ID_HEADER } from "@seckill/sdk";
import { isUserId } from "./ids.js";
import { refuse } from "./refusal.js";

const NO_USER = refuse("UNAUTHENTICATED", `missing or malformed ${USER_ID_HEADER} metadata`);

/** The caller's user id; UNAUTHENTICATED when the entry is missing, repeated or malformed. */
export function userOf(metadata: Metadata): string {
  const values = metadata.get(USER_ID_HEADER);
  const userId = values.length === 1 ? values[0] : undefined;
  if (typeof userId !== "string" || !isUserId(userId)) throw NO_USER;
  return userId;
}
