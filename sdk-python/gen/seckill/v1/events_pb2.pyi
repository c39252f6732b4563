import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from seckill.v1 import order_pb2 as _order_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReservationMade(_message.Message):
    __slots__ = ("reservation_id", "sale_id", "user_id", "request_id", "quantity", "reserved_at")
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    SALE_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    RESERVED_AT_FIELD_NUMBER: _ClassVar[int]
    reservation_id: str
    sale_id: str
    user_id: str
    request_id: str
    quantity: int
    reserved_at: _timestamp_pb2.Timestamp
    def __init__(self, reservation_id: _Optional[str] = ..., sale_id: _Optional[str] = ..., user_id: _Optional[str] = ..., request_id: _Optional[str] = ..., quantity: _Optional[int] = ..., reserved_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReservationBatch(_message.Message):
    __slots__ = ("reservations",)
    RESERVATIONS_FIELD_NUMBER: _ClassVar[int]
    reservations: _containers.RepeatedCompositeFieldContainer[ReservationMade]
    def __init__(self, reservations: _Optional[_Iterable[_Union[ReservationMade, _Mapping]]] = ...) -> None: ...

class StockReleased(_message.Message):
    __slots__ = ("reservation_id", "sale_id", "user_id", "quantity", "cause", "released_at")
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    SALE_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    CAUSE_FIELD_NUMBER: _ClassVar[int]
    RELEASED_AT_FIELD_NUMBER: _ClassVar[int]
    reservation_id: str
    sale_id: str
    user_id: str
    quantity: int
    cause: str
    released_at: _timestamp_pb2.Timestamp
    def __init__(self, reservation_id: _Optional[str] = ..., sale_id: _Optional[str] = ..., user_id: _Optional[str] = ..., quantity: _Optional[int] = ..., cause: _Optional[str] = ..., released_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class OrderStatusChanged(_message.Message):
    __slots__ = ("order_id", "sale_id", "user_id", "status", "changed_at")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    SALE_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CHANGED_AT_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    sale_id: str
    user_id: str
    status: _order_pb2.OrderStatus
    changed_at: _timestamp_pb2.Timestamp
    def __init__(self, order_id: _Optional[str] = ..., sale_id: _Optional[str] = ..., user_id: _Optional[str] = ..., status: _Optional[_Union[_order_pb2.OrderStatus, str]] = ..., changed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class OrderStatusBatch(_message.Message):
    __slots__ = ("changes",)
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[OrderStatusChanged]
    def __init__(self, changes: _Optional[_Iterable[_Union[OrderStatusChanged, _Mapping]]] = ...) -> None: ...
