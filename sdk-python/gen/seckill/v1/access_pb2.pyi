import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetChallengeRequest(_message.Message):
    __slots__ = ("sale_id",)
    SALE_ID_FIELD_NUMBER: _ClassVar[int]
    sale_id: str
    def __init__(self, sale_id: _Optional[str] = ...) -> None: ...

class GetChallengeResponse(_message.Message):
    __slots__ = ("challenge_id", "question", "image", "image_type", "expires_at")
    CHALLENGE_ID_FIELD_NUMBER: _ClassVar[int]
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_TYPE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    challenge_id: str
    question: str
    image: bytes
    image_type: str
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, challenge_id: _Optional[str] = ..., question: _Optional[str] = ..., image: _Optional[bytes] = ..., image_type: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class IssuePurchaseTokenRequest(_message.Message):
    __slots__ = ("sale_id", "challenge_id", "challenge_answer")
    SALE_ID_FIELD_NUMBER: _ClassVar[int]
    CHALLENGE_ID_FIELD_NUMBER: _ClassVar[int]
    CHALLENGE_ANSWER_FIELD_NUMBER: _ClassVar[int]
    sale_id: str
    challenge_id: str
    challenge_answer: str
    def __init__(self, sale_id: _Optional[str] = ..., challenge_id: _Optional[str] = ..., challenge_answer: _Optional[str] = ...) -> None: ...

class IssuePurchaseTokenResponse(_message.Message):
    __slots__ = ("token", "expires_at", "key_id")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    token: str
    expires_at: _timestamp_pb2.Timestamp
    key_id: str
    def __init__(self, token: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., key_id: _Optional[str] = ...) -> None: ...
