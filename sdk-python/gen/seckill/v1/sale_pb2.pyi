import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SalePhase(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SALE_PHASE_UNSPECIFIED: _ClassVar[SalePhase]
    SALE_PHASE_NOT_STARTED: _ClassVar[SalePhase]
    SALE_PHASE_OPEN: _ClassVar[SalePhase]
    SALE_PHASE_SOLD_OUT: _ClassVar[SalePhase]
    SALE_PHASE_ENDED: _ClassVar[SalePhase]

class ReleasePolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RELEASE_POLICY_UNSPECIFIED: _ClassVar[ReleasePolicy]
    RELEASE_POLICY_RESTORE_ALLOWANCE: _ClassVar[ReleasePolicy]
    RELEASE_POLICY_KEEP_ALLOWANCE: _ClassVar[ReleasePolicy]
SALE_PHASE_UNSPECIFIED: SalePhase
SALE_PHASE_NOT_STARTED: SalePhase
SALE_PHASE_OPEN: SalePhase
SALE_PHASE_SOLD_OUT: SalePhase
SALE_PHASE_ENDED: SalePhase
RELEASE_POLICY_UNSPECIFIED: ReleasePolicy
RELEASE_POLICY_RESTORE_ALLOWANCE: ReleasePolicy
RELEASE_POLICY_KEEP_ALLOWANCE: ReleasePolicy

class Sale(_message.Message):
    __slots__ = ("sale_id", "name", "total_stock", "price_minor", "currency", "starts_at", "ends_at", "per_user_limit", "payment_window_seconds", "closed_at", "created_at", "sold", "release_policy", "access_rules")
    SALE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STOCK_FIELD_NUMBER: _ClassVar[int]
    PRICE_MINOR_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    STARTS_AT_FIELD_NUMBER: _ClassVar[int]
    ENDS_AT_FIELD_NUMBER: _ClassVar[int]
    PER_USER_LIMIT_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CLOSED_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    SOLD_FIELD_NUMBER: _ClassVar[int]
    RELEASE_POLICY_FIELD_NUMBER: _ClassVar[int]
    ACCESS_RULES_FIELD_NUMBER: _ClassVar[int]
    sale_id: str
    name: str
    total_stock: int
    price_minor: int
    currency: str
    starts_at: _timestamp_pb2.Timestamp
    ends_at: _timestamp_pb2.Timestamp
    per_user_limit: int
    payment_window_seconds: int
    closed_at: _timestamp_pb2.Timestamp
    created_at: _timestamp_pb2.Timestamp
    sold: int
    release_policy: ReleasePolicy
    access_rules: SaleAccessRules
    def __init__(self, sale_id: _Optional[str] = ..., name: _Optional[str] = ..., total_stock: _Optional[int] = ..., price_minor: _Optional[int] = ..., currency: _Optional[str] = ..., starts_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ends_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., per_user_limit: _Optional[int] = ..., payment_window_seconds: _Optional[int] = ..., closed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sold: _Optional[int] = ..., release_policy: _Optional[_Union[ReleasePolicy, str]] = ..., access_rules: _Optional[_Union[SaleAccessRules, _Mapping]] = ...) -> None: ...

class SaleAccessRules(_message.Message):
    __slots__ = ("challenge_required", "allowed_users", "blocked_users", "min_account_age")
    CHALLENGE_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_USERS_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_USERS_FIELD_NUMBER: _ClassVar[int]
    MIN_ACCOUNT_AGE_FIELD_NUMBER: _ClassVar[int]
    challenge_required: bool
    allowed_users: _containers.RepeatedScalarFieldContainer[str]
    blocked_users: _containers.RepeatedScalarFieldContainer[str]
    min_account_age: _duration_pb2.Duration
    def __init__(self, challenge_required: _Optional[bool] = ..., allowed_users: _Optional[_Iterable[str]] = ..., blocked_users: _Optional[_Iterable[str]] = ..., min_account_age: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class CreateSaleRequest(_message.Message):
    __slots__ = ("request_id", "name", "total_stock", "price_minor", "currency", "starts_at", "ends_at", "per_user_limit", "payment_window_seconds", "release_policy", "access_rules")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STOCK_FIELD_NUMBER: _ClassVar[int]
    PRICE_MINOR_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    STARTS_AT_FIELD_NUMBER: _ClassVar[int]
    ENDS_AT_FIELD_NUMBER: _ClassVar[int]
    PER_USER_LIMIT_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RELEASE_POLICY_FIELD_NUMBER: _ClassVar[int]
    ACCESS_RULES_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    name: str
    total_stock: int
    price_minor: int
    currency: str
    starts_at: _timestamp_pb2.Timestamp
    ends_at: _timestamp_pb2.Timestamp
    per_user_limit: int
    payment_window_seconds: int
    release_policy: ReleasePolicy
    access_rules: SaleAccessRules
    def __init__(self, request_id: _Optional[str] = ..., name: _Optional[str] = ..., total_stock: _Optional[int] = ..., price_minor: _Optional[int] = ..., currency: _Optional[str] = ..., starts_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ends_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., per_user_limit: _Optional[int] = ..., payment_window_seconds: _Optional[int] = ..., release_policy: _Optional[_Union[ReleasePolicy, str]] = ..., access_rules: _Optional[_Union[SaleAccessRules, _Mapping]] = ...) -> None: ...

class CreateSaleResponse(_message.Message):
    __slots__ = ("sale",)
    SALE_FIELD_NUMBER: _ClassVar[int]
    sale: Sale
    def __init__(self, sale: _Optional[_Union[Sale, _Mapping]] = ...) -> None: ...

class GetSaleRequest(_message.Message):
    __slots__ = ("sale_id",)
    SALE_ID_FIELD_NUMBER: _ClassVar[int]
    sale_id: str
    def __init__(self, sale_id: _Optional[str] = ...) -> None: ...

class GetSaleResponse(_message.Message):
    __slots__ = ("sale",)
    SALE_FIELD_NUMBER: _ClassVar[int]
    sale: Sale
    def __init__(self, sale: _Optional[_Union[Sale, _Mapping]] = ...) -> None: ...

class ListSalesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSalesResponse(_message.Message):
    __slots__ = ("sales", "next_page_token")
    SALES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    sales: _containers.RepeatedCompositeFieldContainer[Sale]
    next_page_token: str
    def __init__(self, sales: _Optional[_Iterable[_Union[Sale, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetSaleStatusRequest(_message.Message):
    __slots__ = ("sale_id",)
    SALE_ID_FIELD_NUMBER: _ClassVar[int]
    sale_id: str
    def __init__(self, sale_id: _Optional[str] = ...) -> None: ...

class GetSaleStatusResponse(_message.Message):
    __slots__ = ("sale_id", "phase", "server_time", "starts_at", "ends_at", "stock_left", "total_stock")
    SALE_ID_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    SERVER_TIME_FIELD_NUMBER: _ClassVar[int]
    STARTS_AT_FIELD_NUMBER: _ClassVar[int]
    ENDS_AT_FIELD_NUMBER: _ClassVar[int]
    STOCK_LEFT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STOCK_FIELD_NUMBER: _ClassVar[int]
    sale_id: str
    phase: SalePhase
    server_time: _timestamp_pb2.Timestamp
    starts_at: _timestamp_pb2.Timestamp
    ends_at: _timestamp_pb2.Timestamp
    stock_left: int
    total_stock: int
    def __init__(self, sale_id: _Optional[str] = ..., phase: _Optional[_Union[SalePhase, str]] = ..., server_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., starts_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ends_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., stock_left: _Optional[int] = ..., total_stock: _Optional[int] = ...) -> None: ...

class OpenSaleRequest(_message.Message):
    __slots__ = ("sale_id",)
    SALE_ID_FIELD_NUMBER: _ClassVar[int]
    sale_id: str
    def __init__(self, sale_id: _Optional[str] = ...) -> None: ...

class OpenSaleResponse(_message.Message):
    __slots__ = ("sale",)
    SALE_FIELD_NUMBER: _ClassVar[int]
    sale: Sale
    def __init__(self, sale: _Optional[_Union[Sale, _Mapping]] = ...) -> None: ...

class CloseSaleRequest(_message.Message):
    __slots__ = ("sale_id",)
    SALE_ID_FIELD_NUMBER: _ClassVar[int]
    sale_id: str
    def __init__(self, sale_id: _Optional[str] = ...) -> None: ...

class CloseSaleResponse(_message.Message):
    __slots__ = ("sale",)
    SALE_FIELD_NUMBER: _ClassVar[int]
    sale: Sale
    def __init__(self, sale: _Optional[_Union[Sale, _Mapping]] = ...) -> None: ...

class WarmSaleRequest(_message.Message):
    __slots__ = ("sale_id",)
    SALE_ID_FIELD_NUMBER: _ClassVar[int]
    sale_id: str
    def __init__(self, sale_id: _Optional[str] = ...) -> None: ...

class WarmSaleResponse(_message.Message):
    __slots__ = ("sale_id", "loaded", "stock_left")
    SALE_ID_FIELD_NUMBER: _ClassVar[int]
    LOADED_FIELD_NUMBER: _ClassVar[int]
    STOCK_LEFT_FIELD_NUMBER: _ClassVar[int]
    sale_id: str
    loaded: bool
    stock_left: int
    def __init__(self, sale_id: _Optional[str] = ..., loaded: _Optional[bool] = ..., stock_left: _Optional[int] = ...) -> None: ...

class ReconcileSaleRequest(_message.Message):
    __slots__ = ("sale_id", "repair")
    SALE_ID_FIELD_NUMBER: _ClassVar[int]
    REPAIR_FIELD_NUMBER: _ClassVar[int]
    sale_id: str
    repair: bool
    def __init__(self, sale_id: _Optional[str] = ..., repair: _Optional[bool] = ...) -> None: ...

class ReconcileSaleResponse(_message.Message):
    __slots__ = ("sale_id", "redis", "postgres", "queue", "differences", "repaired", "checked_at")
    SALE_ID_FIELD_NUMBER: _ClassVar[int]
    REDIS_FIELD_NUMBER: _ClassVar[int]
    POSTGRES_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    DIFFERENCES_FIELD_NUMBER: _ClassVar[int]
    REPAIRED_FIELD_NUMBER: _ClassVar[int]
    CHECKED_AT_FIELD_NUMBER: _ClassVar[int]
    sale_id: str
    redis: SaleRedisView
    postgres: SalePostgresView
    queue: SaleQueueView
    differences: _containers.RepeatedCompositeFieldContainer[SaleDifference]
    repaired: bool
    checked_at: _timestamp_pb2.Timestamp
    def __init__(self, sale_id: _Optional[str] = ..., redis: _Optional[_Union[SaleRedisView, _Mapping]] = ..., postgres: _Optional[_Union[SalePostgresView, _Mapping]] = ..., queue: _Optional[_Union[SaleQueueView, _Mapping]] = ..., differences: _Optional[_Iterable[_Union[SaleDifference, _Mapping]]] = ..., repaired: _Optional[bool] = ..., checked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SaleRedisView(_message.Message):
    __slots__ = ("loaded", "stock_left", "reservations", "reserved_units", "released", "unconfirmed", "buyer_units")
    LOADED_FIELD_NUMBER: _ClassVar[int]
    STOCK_LEFT_FIELD_NUMBER: _ClassVar[int]
    RESERVATIONS_FIELD_NUMBER: _ClassVar[int]
    RESERVED_UNITS_FIELD_NUMBER: _ClassVar[int]
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    UNCONFIRMED_FIELD_NUMBER: _ClassVar[int]
    BUYER_UNITS_FIELD_NUMBER: _ClassVar[int]
    loaded: bool
    stock_left: int
    reservations: int
    reserved_units: int
    released: int
    unconfirmed: int
    buyer_units: int
    def __init__(self, loaded: _Optional[bool] = ..., stock_left: _Optional[int] = ..., reservations: _Optional[int] = ..., reserved_units: _Optional[int] = ..., released: _Optional[int] = ..., unconfirmed: _Optional[int] = ..., buyer_units: _Optional[int] = ...) -> None: ...

class SalePostgresView(_message.Message):
    __slots__ = ("total_stock", "sold", "orders", "live_units", "released", "releases_unpublished", "users_over_limit")
    TOTAL_STOCK_FIELD_NUMBER: _ClassVar[int]
    SOLD_FIELD_NUMBER: _ClassVar[int]
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    LIVE_UNITS_FIELD_NUMBER: _ClassVar[int]
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    RELEASES_UNPUBLISHED_FIELD_NUMBER: _ClassVar[int]
    USERS_OVER_LIMIT_FIELD_NUMBER: _ClassVar[int]
    total_stock: int
    sold: int
    orders: int
    live_units: int
    released: int
    releases_unpublished: int
    users_over_limit: int
    def __init__(self, total_stock: _Optional[int] = ..., sold: _Optional[int] = ..., orders: _Optional[int] = ..., live_units: _Optional[int] = ..., released: _Optional[int] = ..., releases_unpublished: _Optional[int] = ..., users_over_limit: _Optional[int] = ...) -> None: ...

class SaleQueueView(_message.Message):
    __slots__ = ("published_seq", "written_seq", "drained")
    PUBLISHED_SEQ_FIELD_NUMBER: _ClassVar[int]
    WRITTEN_SEQ_FIELD_NUMBER: _ClassVar[int]
    DRAINED_FIELD_NUMBER: _ClassVar[int]
    published_seq: int
    written_seq: int
    drained: bool
    def __init__(self, published_seq: _Optional[int] = ..., written_seq: _Optional[int] = ..., drained: _Optional[bool] = ...) -> None: ...

class SaleDifference(_message.Message):
    __slots__ = ("kind", "description", "count", "examples")
    KIND_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    kind: str
    description: str
    count: int
    examples: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, kind: _Optional[str] = ..., description: _Optional[str] = ..., count: _Optional[int] = ..., examples: _Optional[_Iterable[str]] = ...) -> None: ...
