"""Block auth: proving possession of a BAT with an S3 SigV4 signature (spec/peergos.md §7;
spec/nabu.md §2.6; vectors README "s3_bat_auth.json").

Theory of operation
-------------------
To fetch a private block, a node signs a synthetic S3 request (Peergos `Bat.generateAuth` →
`S3Request.computeSignature`, header style):

1. canonical request, lines joined by `\\n`: `GET`, `/api/v0/block/get?arg=<base58 block CID>` (the
   `?arg=` is part of the *path*), an empty query line, `host:<base58 requester peer id>`,
   `x-amz-content-sha256:UNSIGNED-PAYLOAD`, `x-amz-date:<yyyyMMddTHHmmssZ>`, an empty line,
   `host;x-amz-content-sha256;x-amz-date`, `UNSIGNED-PAYLOAD`;
2. string to sign: `AWS4-HMAC-SHA256`, the datetime, `<yyyyMMdd>/eu-central-1/s3/aws4_request`, hex
   sha256 of the canonical request;
3. signing key: the AWS4 HMAC-SHA256 chain from `"AWS4" + bat.encode_secret()` over the date, region,
   `s3`, `aws4_request`; the signature is HMAC(signing key, string to sign).

The requester's peer id sits in the `host` line, so an auth only works for the node that made it. The
expiry and the BAT id (the "access key id") are not signed; they travel beside the signature in
`BlockAuth`, CBOR `{b: h'batid cid', e: expiry seconds, s: h'signature(32)', t: packed time}` with
`t = sec | min<<6 | hour<<12 | day<<17 | month<<22 | (year-2000)<<26` (Java `int` arithmetic: years
2000..2031), transported as lowercase hex of that CBOR.

Verification (`verify_block_auth`, Peergos `BlockRequestAuthoriser`): the auth must not have expired
(`timestamp + e >= now`; we additionally refuse timestamps more than `max_future_skew` seconds ahead,
which Peergos does not check); then for each BAT id the block lists, the inline secret of an inline id,
or — when the id equals `auth.b` — each supplied mirror BAT that really has that id, is tried; the
recomputed signature is compared in constant time. `allow_read` wraps this as the block-request hook:
blocks without BAT ids are public, a missing or malformed auth is a refusal. Time is injected (`now`,
UTC epoch seconds).
"""

from __future__ import annotations

import calendar
import hashlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Self

from nabu_py.multiformats import multibase, multihash
from nabu_py.multiformats.cid import Cid
from peergos_node.cbor import CborMixin, CborValue, as_bytes, as_int, expect_map, only_keys
from peergos_node.cbor import field as cbor_field
from peergos_node.crypto.bat import Bat, BatId
from peergos_node.crypto.hashes import constant_time_equal, hmac_sha256
from peergos_node.errors import AuthError, DecodeError

REGION = "eu-central-1"
SERVICE = "s3"
ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
SIGNED_HEADERS = "host;x-amz-content-sha256;x-amz-date"
BLOCK_GET_PATH = "api/v0/block/get?arg="
DEFAULT_EXPIRY_SECONDS = 300
DEFAULT_MAX_FUTURE_SKEW = 3600
SIGNATURE_BYTES = 32
MIN_YEAR = 2000
MAX_YEAR = 2031
MAX_AUTH_HEX = 512
_JAVA_INT_MAX = (1 << 31) - 1


# ---- time -------------------------------------------------------------------------------------------------
def aws_datetime(epoch_seconds: int) -> str:
    """UTC `yyyyMMddTHHmmssZ` of whole epoch seconds."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(epoch_seconds))


def _parse_fields(text: str) -> tuple[int, int, int, int, int, int]:
    if (
        type(text) is not str
        or len(text) != 16
        or text[8] != "T"
        or text[15] != "Z"
        or not (text[:8] + text[9:15]).isascii()
        or not (text[:8] + text[9:15]).isdigit()
    ):
        raise DecodeError(f"not an AWS datetime (yyyyMMddTHHmmssZ): {text!r}")
    return (
        int(text[0:4]),
        int(text[4:6]),
        int(text[6:8]),
        int(text[9:11]),
        int(text[11:13]),
        int(text[13:15]),
    )


def _epoch(fields: tuple[int, int, int, int, int, int]) -> int:
    year, month, day, hour, minute, second = fields
    if year < 1:
        raise DecodeError("invalid year in AWS datetime")
    if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]):
        raise DecodeError("invalid date in AWS datetime")
    if not (hour < 24 and minute < 60 and second < 60):
        raise DecodeError("invalid time in AWS datetime")
    return calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))


def parse_aws_datetime(text: str) -> int:
    """UTC epoch seconds of `yyyyMMddTHHmmssZ`; DecodeError if malformed or not a real time."""
    return _epoch(_parse_fields(text))


def pack_datetime(text: str) -> int:
    """Peergos' packed time of an AWS datetime (years 2000..2031)."""
    fields = _parse_fields(text)
    _epoch(fields)
    year, month, day, hour, minute, second = fields
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise ValueError("Peergos' packed time holds the years 2000 to 2031 only")
    return second | (minute << 6) | (hour << 12) | (day << 17) | (month << 22) | ((year - MIN_YEAR) << 26)


def unpack_datetime(packed: int) -> str:
    """The AWS datetime of a packed time; DecodeError unless it is a real time in 2000..2031."""
    if not 0 <= packed <= _JAVA_INT_MAX:
        raise DecodeError("packed block auth time out of range")
    year = (packed >> 26) + MIN_YEAR
    fields = (
        year,
        (packed >> 22) & 0xF,
        (packed >> 17) & 0x1F,
        (packed >> 12) & 0x1F,
        (packed >> 6) & 0x3F,
        packed & 0x3F,
    )
    _epoch(fields)
    return "{:04d}{:02d}{:02d}T{:02d}{:02d}{:02d}Z".format(*fields)


# ---- the S3 V4 signature ---------------------------------------------------------------------------
def requester_host(peer_id: bytes | Cid) -> str:
    """The `host` value: plain base58 of the requester's bare peer-id multihash (`12D3KooW...`)."""
    mh = peer_id.multihash if isinstance(peer_id, Cid) else bytes(peer_id)
    multihash.decode(mh)
    return multibase.b58encode(mh)


def block_key(block: Cid) -> str:
    """`api/v0/block/get?arg=` + plain base58 of the block CID bytes."""
    return BLOCK_GET_PATH + block.to_base58()


def canonical_request(host: str, key: str, datetime: str) -> str:
    """The SigV4 canonical request of the synthetic block GET."""
    return "\n".join(
        [
            "GET",
            "/" + key,
            "",
            f"host:{host}",
            f"x-amz-content-sha256:{UNSIGNED_PAYLOAD}",
            f"x-amz-date:{datetime}",
            "",
            SIGNED_HEADERS,
            UNSIGNED_PAYLOAD,
        ]
    )


def string_to_sign(canonical: str, datetime: str) -> str:
    """The SigV4 string to sign."""
    scope = f"{datetime[:8]}/{REGION}/{SERVICE}/aws4_request"
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return "\n".join([ALGORITHM, datetime, scope, digest])


def signing_key_chain(secret_text: str, date: str) -> tuple[bytes, bytes, bytes, bytes]:
    """(date key, date-region key, date-region-service key, signing key) of the AWS4 chain."""
    date_key = hmac_sha256(("AWS4" + secret_text).encode("utf-8"), date.encode("ascii"))
    region_key = hmac_sha256(date_key, REGION.encode("ascii"))
    service_key = hmac_sha256(region_key, SERVICE.encode("ascii"))
    return date_key, region_key, service_key, hmac_sha256(service_key, b"aws4_request")


def compute_signature(bat: Bat, block: Cid, host: str, datetime: str) -> bytes:
    """The 32-byte signature a holder of `bat` makes for `block`, requester `host`, at `datetime`."""
    to_sign = string_to_sign(canonical_request(host, block_key(block), datetime), datetime)
    key = signing_key_chain(bat.encode_secret(), datetime[:8])[3]
    return hmac_sha256(key, to_sign.encode("utf-8"))


@dataclass(frozen=True)
class BlockAuth(CborMixin):
    """A signed, time-limited block request (CBOR `{b, e, s, t}`, hex on the wire)."""

    signature: bytes
    expiry_seconds: int
    datetime: str
    bat_id: BatId

    def __post_init__(self) -> None:
        if type(self.signature) is not bytes or len(self.signature) != SIGNATURE_BYTES:
            raise ValueError("a block auth signature is exactly 32 bytes")
        if not 0 <= self.expiry_seconds <= _JAVA_INT_MAX:
            raise ValueError("block auth expiry out of range")
        if self.bat_id.is_inline:
            raise ValueError("a block auth cannot name an inline BAT id")
        pack_datetime(self.datetime)

    @property
    def timestamp(self) -> int:
        """UTC epoch seconds of the signed datetime."""
        return parse_aws_datetime(self.datetime)

    @property
    def expires_at(self) -> int:
        """UTC epoch seconds after which the auth is refused."""
        return self.timestamp + self.expiry_seconds

    def encode(self) -> str:
        """Lowercase hex of the CBOR (the `auth` string of block/get and bitswap wants)."""
        return self.serialize().hex()

    @classmethod
    def decode(cls, text: str) -> BlockAuth:
        """Parse the hex form; DecodeError on anything malformed."""
        if type(text) is not str or not text or len(text) > MAX_AUTH_HEX:
            raise DecodeError("block auth must be non-empty hex of bounded length")
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise DecodeError("block auth is not hex") from None
        return cls.deserialize(raw)

    def to_cbor(self) -> CborValue:
        return {
            "b": self.bat_id.to_cbor(),
            "e": self.expiry_seconds,
            "s": self.signature,
            "t": pack_datetime(self.datetime),
        }

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        ctx = "BlockAuth"
        m = expect_map(value, ctx)
        only_keys(m, {"b", "e", "s", "t"}, ctx)
        bat_id = BatId.from_cbor(cbor_field(m, "b", ctx))
        expiry = as_int(cbor_field(m, "e", ctx), f"{ctx}.e", 0, _JAVA_INT_MAX)
        signature = as_bytes(cbor_field(m, "s", ctx), f"{ctx}.s", length=SIGNATURE_BYTES)
        datetime = unpack_datetime(as_int(cbor_field(m, "t", ctx), f"{ctx}.t", 0, _JAVA_INT_MAX))
        if bat_id.is_inline:
            raise DecodeError(f"{ctx}: the BAT id must not be inline")
        return cls(signature, expiry, datetime, bat_id)


def generate_auth(
    bat: Bat,
    block: Cid,
    requester: bytes | Cid,
    now: int,
    bat_id: BatId,
    expiry_seconds: int = DEFAULT_EXPIRY_SECONDS,
) -> BlockAuth:
    """Peergos `Bat.generateAuth`: sign a request for `block` by the node `requester` at `now`."""
    if bat_id.is_inline:
        raise ValueError("cannot use an inline BAT id as the S3 access key id")
    datetime = aws_datetime(int(now))
    return BlockAuth(
        compute_signature(bat, block, requester_host(requester), datetime), expiry_seconds, datetime, bat_id
    )


def _candidates(block_bat_ids: Sequence[BatId], auth: BlockAuth, mirror_bats: Sequence[Bat]) -> list[Bat]:
    out: list[Bat] = []
    for bat_id in block_bat_ids:
        inline = bat_id.inline_bat()
        if inline is not None:
            out.append(inline)
        elif bat_id == auth.bat_id:
            out.extend(bat for bat in mirror_bats if bat_id.matches(bat))
    return out


def verify_block_auth(
    auth: BlockAuth,
    block: Cid,
    block_bat_ids: Sequence[BatId],
    requester: bytes | Cid,
    now: float,
    mirror_bats: Iterable[Bat] = (),
    max_future_skew: float = DEFAULT_MAX_FUTURE_SKEW,
) -> None:
    """Raise AuthError unless `auth` proves that `requester` holds a BAT of the block, unexpired at `now`."""
    timestamp = auth.timestamp
    if timestamp + auth.expiry_seconds < now:
        raise AuthError("block auth has expired")
    if timestamp > now + max_future_skew:
        raise AuthError("block auth is dated in the future")
    try:
        host = requester_host(requester)
    except DecodeError:
        raise AuthError("requester is not a valid peer id") from None
    candidates = _candidates(block_bat_ids, auth, list(mirror_bats))
    valid = False
    for bat in candidates:
        valid |= constant_time_equal(compute_signature(bat, block, host, auth.datetime), auth.signature)
    if not valid:
        raise AuthError("block auth signature does not match any BAT of the block")


def allow_read(
    block: Cid,
    block_bat_ids: Sequence[BatId],
    requester: bytes | Cid,
    auth_hex: str | None,
    now: float,
    mirror_bats: Iterable[Bat] = (),
) -> bool:
    """The block-request authoriser: public blocks are readable; others need a valid auth."""
    if not block_bat_ids:
        return True
    if not auth_hex:
        return False
    try:
        auth = BlockAuth.decode(auth_hex)
        verify_block_auth(auth, block, block_bat_ids, requester, now, mirror_bats)
    except (DecodeError, AuthError):
        return False
    return True


__all__ = [
    "DEFAULT_EXPIRY_SECONDS",
    "BlockAuth",
    "allow_read",
    "aws_datetime",
    "block_key",
    "canonical_request",
    "compute_signature",
    "generate_auth",
    "pack_datetime",
    "parse_aws_datetime",
    "requester_host",
    "signing_key_chain",
    "string_to_sign",
    "unpack_datetime",
    "verify_block_auth",
]
