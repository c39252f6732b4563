import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from seckill.v1 import events_pb2 as _events_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReplayOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REPLAY_OUTCOME_UNSPECIFIED: _ClassVar[ReplayOutcome]
    REPLAY_OUTCOME_REPLAYED: _ClassVar[ReplayOutcome]
    REPLAY_OUTCOME_NOT_FOUND: _ClassVar[ReplayOutcome]
    REPLAY_OUTCOME_NOT_REPLAYABLE: _ClassVar[ReplayOutcome]
REPLAY_OUTCOME_UNSPECIFIED: ReplayOutcome
REPLAY_OUTCOME_REPLAYED: ReplayOutcome
REPLAY_OUTCOME_NOT_FOUND: ReplayOutcome
REPLAY_OUTCOME_NOT_REPLAYABLE: ReplayOutcome

class DeadLetter(_message.Message):
    __slots__ = ("subject", "stream_sequence", "payload", "reason", "delivery_count", "reservation", "dead_lettered_at")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    STREAM_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_COUNT_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTERED_AT_FIELD_NUMBER: _ClassVar[int]
    subject: str
    stream_sequence: int
    payload: bytes
    reason: str
    delivery_count: int
    reservation: _events_pb2.ReservationMade
    dead_lettered_at: _timestamp_pb2.Timestamp
    def __init__(self, subject: _Optional[str] = ..., stream_sequence: _Optional[int] = ..., payload: _Optional[bytes] = ..., reason: _Optional[str] = ..., delivery_count: _Optional[int] = ..., reservation: _Optional[_Union[_events_pb2.ReservationMade, _Mapping]] = ..., dead_lettered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StoredDeadLetter(_message.Message):
    __slots__ = ("sequence", "dead_letter", "payload_truncated")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTER_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    dead_letter: DeadLetter
    payload_truncated: bool
    def __init__(self, sequence: _Optional[int] = ..., dead_letter: _Optional[_Union[DeadLetter, _Mapping]] = ..., payload_truncated: _Optional[bool] = ...) -> None: ...

class ListDeadLettersRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "start_sequence")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    START_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    start_sequence: int
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., start_sequence: _Optional[int] = ...) -> None: ...

class ListDeadLettersResponse(_message.Message):
    __slots__ = ("dead_letters", "next_page_token")
    DEAD_LETTERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    dead_letters: _containers.RepeatedCompositeFieldContainer[StoredDeadLetter]
    next_page_token: str
    def __init__(self, dead_letters: _Optional[_Iterable[_Union[StoredDeadLetter, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ReplayDeadLettersRequest(_message.Message):
    __slots__ = ("sequences", "all", "request_id")
    SEQUENCES_FIELD_NUMBER: _ClassVar[int]
    ALL_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    sequences: _containers.RepeatedScalarFieldContainer[int]
    all: bool
    request_id: str
    def __init__(self, sequences: _Optional[_Iterable[int]] = ..., all: _Optional[bool] = ..., request_id: _Optional[str] = ...) -> None: ...

class ReplayResult(_message.Message):
    __slots__ = ("sequence", "outcome", "reservations", "replayed_sequence")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    RESERVATIONS_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    outcome: ReplayOutcome
    reservations: int
    replayed_sequence: int
    def __init__(self, sequence: _Optional[int] = ..., outcome: _Optional[_Union[ReplayOutcome, str]] = ..., reservations: _Optional[int] = ..., replayed_sequence: _Optional[int] = ...) -> None: ...

class ReplayDeadLettersResponse(_message.Message):
    __slots__ = ("results", "more")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ReplayResult]
    more: bool
    def __init__(self, results: _Optional[_Iterable[_Union[ReplayResult, _Mapping]]] = ..., more: _Optional[bool] = ...) -> None: ...
