import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from seckill.v1 import reason_pb2 as _reason_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReserveItem(_message.Message):
    __slots__ = ("sale_id", "user_id", "request_id", "quantity")
    SALE_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    sale_id: str
    user_id: str
    request_id: str
    quantity: int
    def __init__(self, sale_id: _Optional[str] = ..., user_id: _Optional[str] = ..., request_id: _Optional[str] = ..., quantity: _Optional[int] = ...) -> None: ...

class ReserveRequest(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ReserveItem]
    def __init__(self, items: _Optional[_Iterable[_Union[ReserveItem, _Mapping]]] = ...) -> None: ...

class ReserveResult(_message.Message):
    __slots__ = ("reason", "reservation_id", "replayed", "stock_left", "reserved_at", "quantity", "per_user_limit")
    REASON_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    STOCK_LEFT_FIELD_NUMBER: _ClassVar[int]
    RESERVED_AT_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PER_USER_LIMIT_FIELD_NUMBER: _ClassVar[int]
    reason: _reason_pb2.Reason
    reservation_id: str
    replayed: bool
    stock_left: int
    reserved_at: _timestamp_pb2.Timestamp
    quantity: int
    per_user_limit: int
    def __init__(self, reason: _Optional[_Union[_reason_pb2.Reason, str]] = ..., reservation_id: _Optional[str] = ..., replayed: _Optional[bool] = ..., stock_left: _Optional[int] = ..., reserved_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., quantity: _Optional[int] = ..., per_user_limit: _Optional[int] = ...) -> None: ...

class ReserveResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ReserveResult]
    def __init__(self, results: _Optional[_Iterable[_Union[ReserveResult, _Mapping]]] = ...) -> None: ...

class ReleaseRequest(_message.Message):
    __slots__ = ("reservation_id", "cause")
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    CAUSE_FIELD_NUMBER: _ClassVar[int]
    reservation_id: str
    cause: str
    def __init__(self, reservation_id: _Optional[str] = ..., cause: _Optional[str] = ...) -> None: ...

class ReleaseResponse(_message.Message):
    __slots__ = ("released", "stock_left")
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    STOCK_LEFT_FIELD_NUMBER: _ClassVar[int]
    released: bool
    stock_left: int
    def __init__(self, released: _Optional[bool] = ..., stock_left: _Optional[int] = ...) -> None: ...

class GetStockRequest(_message.Message):
    __slots__ = ("sale_id",)
    SALE_ID_FIELD_NUMBER: _ClassVar[int]
    sale_id: str
    def __init__(self, sale_id: _Optional[str] = ...) -> None: ...

class GetStockResponse(_message.Message):
    __slots__ = ("sale_id", "total_stock", "stock_left", "warm")
    SALE_ID_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STOCK_FIELD_NUMBER: _ClassVar[int]
    STOCK_LEFT_FIELD_NUMBER: _ClassVar[int]
    WARM_FIELD_NUMBER: _ClassVar[int]
    sale_id: str
    total_stock: int
    stock_left: int
    warm: bool
    def __init__(self, sale_id: _Optional[str] = ..., total_stock: _Optional[int] = ..., stock_left: _Optional[int] = ..., warm: _Optional[bool] = ...) -> None: ...

class GetReservationRequest(_message.Message):
    __slots__ = ("reservation_id",)
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    reservation_id: str
    def __init__(self, reservation_id: _Optional[str] = ...) -> None: ...

class GetReservationResponse(_message.Message):
    __slots__ = ("reservation_id", "sale_id", "user_id", "request_id", "quantity", "reserved_at", "released")
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    SALE_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    RESERVED_AT_FIELD_NUMBER: _ClassVar[int]
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    reservation_id: str
    sale_id: str
    user_id: str
    request_id: str
    quantity: int
    reserved_at: _timestamp_pb2.Timestamp
    released: bool
    def __init__(self, reservation_id: _Optional[str] = ..., sale_id: _Optional[str] = ..., user_id: _Optional[str] = ..., request_id: _Optional[str] = ..., quantity: _Optional[int] = ..., reserved_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., released: _Optional[bool] = ...) -> None: ...
