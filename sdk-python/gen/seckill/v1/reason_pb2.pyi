from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor

class Reason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REASON_UNSPECIFIED: _ClassVar[Reason]
    REASON_SOLD_OUT: _ClassVar[Reason]
    REASON_SALE_NOT_STARTED: _ClassVar[Reason]
    REASON_SALE_ENDED: _ClassVar[Reason]
    REASON_ORDER_NOT_PAYABLE: _ClassVar[Reason]
    REASON_ALREADY_PURCHASED: _ClassVar[Reason]
    REASON_RATE_LIMITED: _ClassVar[Reason]
    REASON_OVERLOADED: _ClassVar[Reason]
    REASON_UNAUTHENTICATED: _ClassVar[Reason]
    REASON_PERMISSION_DENIED: _ClassVar[Reason]
    REASON_INVALID_ARGUMENT: _ClassVar[Reason]
    REASON_NOT_FOUND: _ClassVar[Reason]
    REASON_ORDER_NOT_CANCELLABLE: _ClassVar[Reason]
    REASON_SALE_NOT_MODIFIABLE: _ClassVar[Reason]
    REASON_TOO_MANY_WATCHES: _ClassVar[Reason]
    REASON_CHALLENGE_REQUIRED: _ClassVar[Reason]
    REASON_CHALLENGE_FAILED: _ClassVar[Reason]
    REASON_NOT_ELIGIBLE: _ClassVar[Reason]
    REASON_PURCHASE_TOKEN_INVALID: _ClassVar[Reason]
REASON_UNSPECIFIED: Reason
REASON_SOLD_OUT: Reason
REASON_SALE_NOT_STARTED: Reason
REASON_SALE_ENDED: Reason
REASON_ORDER_NOT_PAYABLE: Reason
REASON_ALREADY_PURCHASED: Reason
REASON_RATE_LIMITED: Reason
REASON_OVERLOADED: Reason
REASON_UNAUTHENTICATED: Reason
REASON_PERMISSION_DENIED: Reason
REASON_INVALID_ARGUMENT: Reason
REASON_NOT_FOUND: Reason
REASON_ORDER_NOT_CANCELLABLE: Reason
REASON_SALE_NOT_MODIFIABLE: Reason
REASON_TOO_MANY_WATCHES: Reason
REASON_CHALLENGE_REQUIRED: Reason
REASON_CHALLENGE_FAILED: Reason
REASON_NOT_ELIGIBLE: Reason
REASON_PURCHASE_TOKEN_INVALID: Reason
