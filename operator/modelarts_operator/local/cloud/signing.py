"""Verify Huawei Cloud `SDK-HMAC-SHA256` request signatures (the API Gateway's AK/SK authentication).

The algorithm mirrors `huaweicloudsdkcore.signer.Signer`:

    canonical request = METHOD \n URI (each path segment URL-encoded, "/" appended) \n
                        sorted query (k=v, URL-encoded, safe "~") \n
                        "name:value" lines of the signed headers (lower-case, values stripped) \n \n
                        signed header names joined by ";" \n
                        hex(sha256(body)) (or the X-Sdk-Content-Sha256 header; the empty hash for no body)
    string to sign    = "SDK-HMAC-SHA256\n" + X-Sdk-Date + "\n" + hex(sha256(canonical request))
    signature         = hex(HMAC-SHA256(SK, string to sign))

Authorization: `SDK-HMAC-SHA256 Access=AK, SignedHeaders=a;b;c, Signature=hex`.

A supplied X-Sdk-Content-Sha256 must be the body's hash (a signature over a declared hash says
nothing about a body that does not match it), except the SDK's `UNSIGNED-PAYLOAD`, which it sends
for every non-JSON body (multipart predictions) and which leaves the body out of the signature.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl, quote, unquote

ALGORITHM = "SDK-HMAC-SHA256"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
MAX_CLOCK_SKEW = timedelta(minutes=15)
EMPTY_HASH = hashlib.sha256(b"").hexdigest()
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_SHA256_RE = re.compile(r"[0-9a-fA-F]{64}")
_AUTH_RE = re.compile(
    r"^SDK-HMAC-SHA256\s+Access=(?P<ak>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),\s*Signature=(?P<sig>[0-9a-fA-F]+)\s*$"
)


class SignatureError(Exception):
    """The request is not signed, or not signed correctly; the message says why (never a secret)."""


def _encode(value: str) -> str:
    return quote(value, safe="~")


def canonical_uri(raw_path: str) -> str:
    path = "/".join(_encode(segment) for segment in unquote(raw_path).split("/"))
    return path if path.endswith("/") else path + "/"


def canonical_query(query_string: str) -> str:
    pairs = sorted(parse_qsl(query_string, keep_blank_values=True))
    return "&".join(f"{_encode(k)}={_encode(v)}" for k, v in pairs)


def string_to_sign(
    method: str,
    raw_path: str,
    query_string: str,
    headers: Mapping[str, str],
    signed_headers: Iterable[str],
    body: bytes,
    sdk_date: str,
) -> str:
    signed = list(signed_headers)
    lowered = {k.lower(): v.strip() for k, v in headers.items()}
    header_lines = "".join(f"{name}:{lowered.get(name, '')}\n" for name in signed)
    if not body:
        payload_hash = EMPTY_HASH
    else:
        payload_hash = lowered.get("x-sdk-content-sha256") or hashlib.sha256(body).hexdigest()
    canonical = "\n".join(
        [method.upper(), canonical_uri(raw_path), canonical_query(query_string), header_lines, ";".join(signed), payload_hash]
    )
    return f"{ALGORITHM}\n{sdk_date}\n{hashlib.sha256(canonical.encode()).hexdigest()}"


def verify(
    method: str,
    raw_path: str,
    query_string: str,
    headers: Mapping[str, str],
    body: bytes,
    credentials: Mapping[str, str],
    now: datetime | None = None,
) -> str:
    """Check the request's signature against `credentials` ({ak: sk}); return the AK or raise SignatureError."""
    lowered = {k.lower(): v for k, v in headers.items()}
    authorization = lowered.get("authorization")
    if not authorization:
        raise SignatureError("the request carries no Authorization header")
    match = _AUTH_RE.match(authorization)
    if not match:
        raise SignatureError(f"the Authorization header is not an {ALGORITHM} signature")
    ak = match["ak"]
    sk = credentials.get(ak)
    if sk is None:
        raise SignatureError(f"unknown access key {ak}")
    signed = match["signed"].lower().split(";")
    if "x-sdk-date" not in signed:
        raise SignatureError("X-Sdk-Date is not among the signed headers")
    missing = [name for name in signed if name not in lowered]
    if missing:
        raise SignatureError(f"signed header(s) missing from the request: {', '.join(missing)}")
    sdk_date = lowered["x-sdk-date"].strip()
    try:
        signed_at = datetime.strptime(sdk_date, DATE_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        raise SignatureError(f"X-Sdk-Date {sdk_date!r} is not in the format YYYYMMDDTHHMMSSZ") from None
    now = now or datetime.now(timezone.utc)
    if abs(now - signed_at) > MAX_CLOCK_SKEW:
        raise SignatureError(f"X-Sdk-Date {sdk_date} is more than 15 minutes away from the server time")
    _check_body_hash(lowered.get("x-sdk-content-sha256"), body)
    try:  # header bytes that are not UTF-8 arrive as surrogates: sign the bytes that were sent
        canonical = string_to_sign(method, raw_path, query_string, headers, signed, body, sdk_date)
        expected = hmac.new(sk.encode(), canonical.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()
    except UnicodeError:
        raise SignatureError("the signed path or query is not UTF-8") from None
    if not hmac.compare_digest(expected, match["sig"].lower()):
        raise SignatureError("the signature does not match the request (check the secret key and the signed content)")
    return ak


def _check_body_hash(declared: str | None, body: bytes) -> None:
    if declared is None or declared.strip() == UNSIGNED_PAYLOAD:
        return
    if not _SHA256_RE.fullmatch(declared.strip()):
        raise SignatureError(f"X-Sdk-Content-Sha256 is neither a SHA-256 hex digest nor {UNSIGNED_PAYLOAD}")
    if declared.strip().lower() != hashlib.sha256(body).hexdigest():
        raise SignatureError("X-Sdk-Content-Sha256 does not match the body (the body changed after signing)")
