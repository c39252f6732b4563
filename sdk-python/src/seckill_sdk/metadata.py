"""The request metadata a BFF sets on calls it makes for a logged-in buyer."""

# Names the buyer; set by the BFF after login (the edge strips it from outside requests).
USER_ID_HEADER = "x-user-id"
# Names the sale of a PlaceOrder, so the edge can limit per sale without parsing the message.
SALE_ID_HEADER = "x-sale-id"
# Carries the token from AccessService.IssuePurchaseToken.
PURCHASE_TOKEN_HEADER = "x-purchase-token"
# The buyer's account creation time (RFC 3339), for sales with a minimum account age.
ACCOUNT_CREATED_AT_HEADER = "x-account-created-at"

Metadata = list[tuple[str, str]]


def user_metadata(user_id: str) -> Metadata:
    """Metadata for a call made on behalf of a user."""
    return [(USER_ID_HEADER, user_id)]


def purchase_metadata(user_id: str, sale_id: str, token: str | None = None) -> Metadata:
    """Metadata for a PlaceOrder: the user, the sale and, when there is one, the purchase token."""
    metadata = [*user_metadata(user_id), (SALE_ID_HEADER, sale_id)]
    if token:
        metadata.append((PURCHASE_TOKEN_HEADER, token))
    return metadata
