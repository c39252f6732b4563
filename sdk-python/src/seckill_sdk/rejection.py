"""Reading a refusal: the gRPC code plus the google.rpc.Status the services
send in the grpc-status-details-bin trailer (ErrorInfo with the reason,
RetryInfo, BadRequest)."""

from dataclasses import dataclass, field

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

DETAILS_TRAILER = "grpc-status-details-bin"
# The ErrorInfo domain of every Seckill Mesh refusal.
ERROR_DOMAIN = "seckill.v1"


@dataclass
class Rejection:
    code: grpc.StatusCode
    message: str
    # ErrorInfo.reason when the server sent one ("SOLD_OUT", ...); the edge's own refusals have none.
    reason: str | None = None
    # RetryInfo: seconds to wait before retrying with the same request id.
    retry_delay: float | None = None
    # BadRequest: (field, description) of each wrong field.
    field_violations: list[tuple[str, str]] = field(default_factory=list)


def rejection_of(error: grpc.RpcError) -> Rejection:
    """What a failed call says: its code and message, and the reason and details when the server sent them."""
    out = Rejection(code=error.code(), message=error.details() or "")
    raw = next((value for key, value in error.trailing_metadata() or () if key == DETAILS_TRAILER), None)
    if not isinstance(raw, bytes):
        return out
    try:
        status = status_pb2.Status.FromString(raw)
    except DecodeError:
        return out
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            if info.domain == ERROR_DOMAIN:
                out.reason = info.reason
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            out.retry_delay = retry.retry_delay.ToTimedelta().total_seconds()
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            out.field_violations.extend((v.field, v.description) for v in bad.field_violations)
    return out
