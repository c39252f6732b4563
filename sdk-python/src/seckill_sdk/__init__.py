"""Helpers for calling Seckill Mesh from Python; the messages and stubs are in seckill.v1."""

from seckill_sdk.metadata import (
    ACCOUNT_CREATED_AT_HEADER,
    PURCHASE_TOKEN_HEADER,
    SALE_ID_HEADER,
    USER_ID_HEADER,
    purchase_metadata,
    user_metadata,
)
from seckill_sdk.rejection import DETAILS_TRAILER, ERROR_DOMAIN, Rejection, rejection_of

__all__ = [
    "ACCOUNT_CREATED_AT_HEADER",
    "DETAILS_TRAILER",
    "ERROR_DOMAIN",
    "PURCHASE_TOKEN_HEADER",
    "SALE_ID_HEADER",
    "USER_ID_HEADER",
    "Rejection",
    "purchase_metadata",
    "rejection_of",
    "user_metadata",
]
