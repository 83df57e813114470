"""Classify what OBS and ModelArts answer into a few kinds the operator acts on."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import Enum
from typing import TypeVar

T = TypeVar("T")


class ErrorKind(str, Enum):
    NOT_FOUND = "NotFound"
    CONFLICT = "Conflict"  # duplicate name, or the resource is in a state that forbids the call
    THROTTLED = "Throttled"  # retry after a pause
    TRANSIENT = "Transient"  # 5xx, connection trouble: retry
    QUOTA = "QuotaExceeded"  # may clear when other resources go: retry slowly
    AUTH = "Unauthorized"  # credentials wrong or lacking rights: retrying will not help
    PERMANENT = "Permanent"  # the request itself is wrong


RETRYABLE = frozenset({ErrorKind.THROTTLED, ErrorKind.TRANSIENT})

# ModelArts codes whose HTTP status alone would mislead (e.g. "job not found" is HTTP 400). Each code is
# declared once, next to the calls that meet it: `cloud/modelarts/transport.py` (service-wide codes) and one
# module per resource family, each of which registers its codes here when it is imported.
MODELARTS_CODES: dict[str, ErrorKind] = {}


def register_codes(codes: Mapping[str, ErrorKind]) -> None:
    """Add a family's ModelArts codes to the map `from_sdk_exception` reads; a code has one meaning."""
    for code, kind in codes.items():
        if MODELARTS_CODES.setdefault(code, kind) is not kind:
            raise ValueError(f"{code} is already registered as {MODELARTS_CODES[code].value}, not {kind.value}")


OBS_CODES = {
    "NoSuchBucket": ErrorKind.NOT_FOUND,
    "NoSuchKey": ErrorKind.NOT_FOUND,
    "BucketAlreadyExists": ErrorKind.CONFLICT,
    "BucketNotEmpty": ErrorKind.CONFLICT,
    "SlowDown": ErrorKind.THROTTLED,
    "ServiceUnavailable": ErrorKind.TRANSIENT,
    "AccessDenied": ErrorKind.AUTH,
    "InvalidAccessKeyId": ErrorKind.AUTH,
    "SignatureDoesNotMatch": ErrorKind.AUTH,
    "TooManyBuckets": ErrorKind.QUOTA,
}


def kind_from_status(status: int | None) -> ErrorKind:
    if status is None or status <= 0:
        return ErrorKind.TRANSIENT  # no answer at all
    if status in (401, 403):
        return ErrorKind.AUTH
    if status == 404:
        return ErrorKind.NOT_FOUND
    if status == 409:
        return ErrorKind.CONFLICT
    if status == 429:
        return ErrorKind.THROTTLED
    if status >= 500 or status == 408:
        return ErrorKind.TRANSIENT
    return ErrorKind.PERMANENT


class CloudError(Exception):
    """A failed cloud call. The message holds the service's code and text, never credentials."""

    def __init__(self, operation: str, kind: ErrorKind, message: str, *, status: int | None = None,
                 code: str | None = None, request_id: str | None = None):
        self.operation = operation
        self.kind = kind
        self.status = status
        self.code = code
        self.request_id = request_id
        self.detail = message
        where = ", ".join(x for x in (f"HTTP {status}" if status else "", f"request {request_id}" if request_id else "") if x)
        super().__init__(f"{operation} failed: {code + ': ' if code else ''}{message}{f' ({where})' if where else ''}")

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE


def none_if_gone(call: Callable[[], T]) -> T | None:
    """Run a read; None when the resource does not exist (NotFound), other errors propagate."""
    try:
        return call()
    except CloudError as exc:
        if exc.kind is ErrorKind.NOT_FOUND:
            return None
        raise


def from_sdk_exception(operation: str, exc: Exception) -> CloudError:
    """Map a huaweicloudsdkcore exception (or a lower-level connection error) to a CloudError."""
    from huaweicloudsdkcore.exceptions import exceptions as sdk

    if isinstance(exc, sdk.ServiceResponseException):
        code = exc.error_code or None
        kind = MODELARTS_CODES.get(code) if code else None
        if kind is None and code and code.startswith("APIGW."):
            kind = ErrorKind.THROTTLED if exc.status_code == 429 else kind_from_status(exc.status_code)
        return CloudError(operation, kind or kind_from_status(exc.status_code), exc.error_msg or "no message",
                          status=exc.status_code, code=code, request_id=exc.request_id)
    if isinstance(exc, sdk.SdkException):  # connection, timeout, SSL: no answer from the service
        return CloudError(operation, ErrorKind.TRANSIENT, f"{type(exc).__name__}: {exc.error_msg}")
    return CloudError(operation, ErrorKind.TRANSIENT, f"{type(exc).__name__}: {exc}")


def from_obs_response(operation: str, response) -> CloudError:
    """Map a failed esdk-obs-python response (it returns errors instead of raising)."""
    status = getattr(response, "status", None)
    code = getattr(response, "errorCode", None) or None
    message = getattr(response, "errorMessage", None) or getattr(response, "reason", None) or "no message"
    kind = OBS_CODES.get(code) if code else None
    return CloudError(operation, kind or kind_from_status(status), str(message), status=status, code=code,
                      request_id=getattr(response, "requestId", None))
