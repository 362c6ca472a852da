"""File and directory metadata: `FileProperties`, Java times and the per-file hash tree
(spec/peergos.md §6.3, §6.5; vectors README "cbor.json" FileProperties rows, "cryptree.json").

Theory of operation
-------------------
Every cryptree node carries a `FileProperties` inside its FromParent block (§6.2), so names, sizes,
times, MIME types, thumbnails and the file's stream secret are all encrypted. Its CBOR map, in canonical
(length-first) key order, is
`{c, d, h, l, m, n, p?, s, t, cn, tn, th?, i?, im?}`: created / modified as UTC epoch seconds (`c`, `t`)
plus nanoseconds (`cn`, `tn`), `d` directory, `h` hidden, `l` link node, `m` MIME type, `n` name,
`s` size, `p` the 32-byte stream secret that chains a file's chunk locations (§6.5), `th` a branch of the
file's hash tree, `i`/`im` an inline thumbnail and its MIME type. Peergos reads old maps leniently (`l`,
`tn`, `c`, `cn` and `im` may be missing: false, 0, the modification time, 0 and `image/png`), and so do we;
the keys themselves are checked strictly.

Times are Java `LocalDateTime`s taken as UTC: `Timestamp(seconds, nanos)` holds them exactly over Java's
whole range (years -999,999,999 to 999,999,999; Python's `datetime` covers only 1..9999), including
`LocalDateTime.MIN`, which `FileProperties.EMPTY` (the props of directory overflow chunks) uses.

The hash tree (`HashTree`, §6.3) hashes a file in 5 MiB chunks: level 1 is the list of chunk sha256s in
groups of 1024 (`ChunkHashList {h: concatenated hashes}`), each higher level hashes the CBOR of the level
below in groups of 1024, and the root is sha256 of the CBOR list of the top level. A chunk whose index is
a multiple of 1024 carries the `HashBranch` `{r: {h: root}, l1?, l2?, l3?}` covering it.

Decoding is strict and bounded: names follow Peergos' rules (at most 255 UTF-16 code units, no `/`, not
empty, `.` or `..`), directories have no stream secret, times are within Java's range, thumbnails are at
most 100 KiB. Anything else is a `DecodeError`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from dataclasses import field as dc_field
from typing import ClassVar, Self

from nabu_py.codec import dag_cbor
from peergos_node.cbor import (
    CborMixin,
    CborValue,
    as_bool,
    as_bytes,
    as_int,
    as_str,
    expect_list,
    expect_map,
    only_keys,
)
from peergos_node.cbor import field as cbor_field
from peergos_node.crypto.hashes import sha256
from peergos_node.errors import DecodeError

CHUNK_SIZE = 5 * 1024 * 1024
"""Bytes of file data per cryptree node (Java `Chunk.MAX_SIZE`)."""

MAX_FILE_NAME_SIZE = 255
"""Longest name, in UTF-16 code units as Java counts them (`FileProperties.MAX_FILE_NAME_SIZE`)."""

MAX_THUMBNAIL_SIZE = 100 * 1024
MAX_MIME_TYPE_LENGTH = 1024
STREAM_SECRET_BYTES = 32
HASH_BYTES = 32
HASHES_PER_LIST = 1024
SUBSEQUENT_DIR_CHUNK_NAME = ".subsequent-dir-chunk"
DEFAULT_THUMBNAIL_MIME = "image/png"

_NANOS_PER_SECOND = 1_000_000_000
_JAVA_MIN_YEAR = -999_999_999
_JAVA_MAX_YEAR = 999_999_999


# ---- Java LocalDateTime as UTC -------------------------------------------------------------------------
def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (any year)."""
    y = year - (1 if month <= 2 else 0)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _civil_from_days(days: int) -> tuple[int, int, int]:
    """Inverse of `_days_from_civil`."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (1 if month <= 2 else 0), month, day


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
MIN_EPOCH_SECOND = _days_from_civil(_JAVA_MIN_YEAR, 1, 1) * 86400
"""`LocalDateTime.MIN.toEpochSecond(UTC)`."""
MAX_EPOCH_SECOND = _days_from_civil(_JAVA_MAX_YEAR, 12, 31) * 86400 + 86399
"""`LocalDateTime.MAX.toEpochSecond(UTC)`."""

_ISO = re.compile(
    r"([+-]?\d{4,10})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:Z|[+-]00:00)?"
)


@dataclass(frozen=True, order=True)
class Timestamp:
    """A Java `LocalDateTime` read as UTC: epoch seconds plus nanoseconds, over Java's whole range."""

    seconds: int
    nanos: int = 0

    MIN: ClassVar[Timestamp]
    """Java `LocalDateTime.MIN` (-999999999-01-01T00:00)."""

    def __post_init__(self) -> None:
        if type(self.seconds) is not int or type(self.nanos) is not int:
            raise ValueError("timestamp seconds and nanos are integers")
        if not MIN_EPOCH_SECOND <= self.seconds <= MAX_EPOCH_SECOND:
            raise ValueError(f"epoch second {self.seconds} is outside Java's LocalDateTime range")
        if not 0 <= self.nanos < _NANOS_PER_SECOND:
            raise ValueError(f"nanoseconds {self.nanos} out of range")

    @classmethod
    def of(
        cls, year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, nanos: int = 0
    ) -> Timestamp:
        """A date and time of day (UTC), checked like `LocalDateTime.of`."""
        if not _JAVA_MIN_YEAR <= year <= _JAVA_MAX_YEAR or not 1 <= month <= 12:
            raise ValueError("year or month out of range")
        last = 29 if month == 2 and _is_leap(year) else _MONTH_DAYS[month - 1]
        if not 1 <= day <= last or not 0 <= hour < 24 or not 0 <= minute < 60 or not 0 <= second < 60:
            raise ValueError("day or time of day out of range")
        secs = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
        return cls(secs, nanos)

    @classmethod
    def parse(cls, text: str) -> Timestamp:
        """Parse Java's `LocalDateTime.toString()` form (`2024-03-04T05:06:07.123456789`,
        `-999999999-01-01T00:00`); a trailing `Z` or `+00:00` is accepted."""
        m = _ISO.fullmatch(text) if isinstance(text, str) else None
        if m is None:
            raise ValueError(f"not an ISO local date-time: {text!r}")
        year, month, day, hour, minute = (int(g) for g in m.group(1, 2, 3, 4, 5))
        second = int(m.group(6) or 0)
        fraction = m.group(7) or ""
        nanos = int(fraction.ljust(9, "0")) if fraction else 0
        return cls.of(year, month, day, hour, minute, second, nanos)

    @classmethod
    def from_epoch_millis(cls, millis: int) -> Timestamp:
        """From milliseconds since the epoch (e.g. `time.time_ns() // 10**6`)."""
        return cls(millis // 1000, (millis % 1000) * 1_000_000)

    @classmethod
    def from_epoch_nanos(cls, nanos: int) -> Timestamp:
        """From nanoseconds since the epoch (`time.time_ns()`)."""
        return cls(nanos // _NANOS_PER_SECOND, nanos % _NANOS_PER_SECOND)

    def truncated_to_seconds(self) -> Timestamp:
        """The same time without its fraction of a second."""
        return Timestamp(self.seconds)

    def __str__(self) -> str:
        """Java's `LocalDateTime.toString()`."""
        days, rest = divmod(self.seconds, 86400)
        year, month, day = _civil_from_days(days)
        hour, rest = divmod(rest, 3600)
        minute, second = divmod(rest, 60)
        if abs(year) < 1000:
            ys = ("-" if year < 0 else "") + f"{abs(year):04d}"
        else:
            ys = ("+" if year > 9999 else "") + str(year)
        out = f"{ys}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}"
        if second or self.nanos:
            out += f":{second:02d}"
            if self.nanos:
                if self.nanos % 1_000_000 == 0:
                    out += f".{self.nanos // 1_000_000:03d}"
                elif self.nanos % 1000 == 0:
                    out += f".{self.nanos // 1000:06d}"
                else:
                    out += f".{self.nanos:09d}"
        return out


Timestamp.MIN = Timestamp(MIN_EPOCH_SECOND)


def _timestamp(seconds: CborValue, nanos: CborValue, ctx: str) -> Timestamp:
    secs = as_int(seconds, ctx, MIN_EPOCH_SECOND, MAX_EPOCH_SECOND)
    return Timestamp(secs, as_int(nanos, f"{ctx} nanos", 0, _NANOS_PER_SECOND - 1))


# ---- names ---------------------------------------------------------------------------------------------
def java_length(text: str) -> int:
    """Length of a string in UTF-16 code units, as Java's `String.length()` counts it."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def check_path_element(name: str) -> None:
    """Peergos `PathElement` rules: at most 255 UTF-16 code units and no `/` (ValueError otherwise)."""
    if type(name) is not str:
        raise ValueError("a name is a string")
    if "/" in name or java_length(name) > MAX_FILE_NAME_SIZE:
        raise ValueError(f"invalid path element {name[:40]!r}")


def check_file_name(name: str) -> None:
    """`FileProperties` name rules: a valid path element that is not empty, `.` or `..`."""
    check_path_element(name)
    if name in ("", ".", ".."):
        raise ValueError(f"invalid file name {name!r}")


# ---- hash tree -----------------------------------------------------------------------------------------
_HASH_LIST_KEYS = frozenset({"h"})
_HASH_BRANCH_KEYS = frozenset({"r", "l1", "l2", "l3"})
_HASH_TREE_KEYS = frozenset({"r", "ll1", "ll2", "ll3"})


def _hash_list_bytes(value: CborValue, ctx: str) -> bytes:
    m = expect_map(value, ctx)
    only_keys(m, _HASH_LIST_KEYS, ctx)
    return as_bytes(cbor_field(m, "h", ctx), f"{ctx}.h", max_len=HASH_BYTES * HASHES_PER_LIST)


@dataclass(frozen=True)
class RootHash(CborMixin):
    """The root of a file's hash tree (CBOR `{h: h'32 bytes'}`)."""

    hash: bytes

    def __post_init__(self) -> None:
        if type(self.hash) is not bytes or len(self.hash) != HASH_BYTES:
            raise ValueError("a root hash is 32 bytes")

    def to_cbor(self) -> CborValue:
        return {"h": self.hash}

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        raw = _hash_list_bytes(value, "RootHash")
        if len(raw) != HASH_BYTES:
            raise DecodeError("RootHash: expected 32 bytes")
        return cls(raw)


@dataclass(frozen=True)
class ChunkHashList(CborMixin):
    """Up to 1024 concatenated sha256 hashes (CBOR `{h: h'...'}`)."""

    hashes: bytes

    def __post_init__(self) -> None:
        n = len(self.hashes) if type(self.hashes) is bytes else -1
        if n <= 0 or n % HASH_BYTES or n > HASH_BYTES * HASHES_PER_LIST:
            raise ValueError("a chunk hash list holds 1 to 1024 32-byte hashes")

    @property
    def count(self) -> int:
        """Number of hashes."""
        return len(self.hashes) // HASH_BYTES

    def __getitem__(self, index: int) -> bytes:
        if not 0 <= index < self.count:
            raise IndexError(index)
        return self.hashes[index * HASH_BYTES : (index + 1) * HASH_BYTES]

    def to_cbor(self) -> CborValue:
        return {"h": self.hashes}

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        raw = _hash_list_bytes(value, "ChunkHashList")
        try:
            return cls(raw)
        except ValueError as e:
            raise DecodeError(f"ChunkHashList: {e}") from None


def _optional_level(m: dict[str, CborValue], key: str) -> ChunkHashList | None:
    return ChunkHashList.from_cbor(m[key]) if key in m else None


@dataclass(frozen=True)
class HashBranch(CborMixin):
    """The part of a hash tree a chunk carries: root plus the level lists covering it
    (CBOR `{r: RootHash, l1?: ChunkHashList, l2?, l3?}`)."""

    root: RootHash
    level1: ChunkHashList | None = None
    level2: ChunkHashList | None = None
    level3: ChunkHashList | None = None

    def __post_init__(self) -> None:
        if (self.level2 is not None and self.level1 is None) or (
            self.level3 is not None and self.level2 is None
        ):
            raise ValueError("a hash branch level needs the level below it")

    def to_cbor(self) -> CborValue:
        m: dict[str, CborValue] = {"r": self.root.to_cbor()}
        for key, level in (("l1", self.level1), ("l2", self.level2), ("l3", self.level3)):
            if level is not None:
                m[key] = level.to_cbor()
        return m

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        m = expect_map(value, "HashBranch")
        only_keys(m, _HASH_BRANCH_KEYS, "HashBranch")
        root = RootHash.from_cbor(cbor_field(m, "r", "HashBranch"))
        levels = [_optional_level(m, k) for k in ("l1", "l2", "l3")]
        try:
            return cls(root, *levels)
        except ValueError as e:
            raise DecodeError(f"HashBranch: {e}") from None


def _group(hashes: Sequence[bytes]) -> list[ChunkHashList]:
    step = HASHES_PER_LIST
    return [ChunkHashList(b"".join(hashes[i : i + step])) for i in range(0, len(hashes), step)]


def _list_root(level: list[ChunkHashList]) -> RootHash:
    return RootHash(sha256(dag_cbor.encode([item.to_cbor() for item in level])))


@dataclass(frozen=True)
class HashTree(CborMixin):
    """A file's whole hash tree (CBOR `{r, ll1: [...], ll2: [...], ll3: [...]}`, Java `HashTree`)."""

    root: RootHash
    level1: tuple[ChunkHashList, ...]
    level2: tuple[ChunkHashList, ...] = ()
    level3: tuple[ChunkHashList, ...] = ()

    @classmethod
    def build(cls, chunk_hashes: Sequence[bytes]) -> HashTree:
        """The tree over the sha256 of each 5 MiB chunk, in order (Java `HashTree.build`)."""
        if not chunk_hashes:
            raise ValueError("a file has at least one chunk hash")
        if any(type(h) is not bytes or len(h) != HASH_BYTES for h in chunk_hashes):
            raise ValueError("chunk hashes are 32-byte sha256 digests")
        levels: list[list[ChunkHashList]] = [_group(chunk_hashes)]
        while len(levels[-1]) > 1:
            if len(levels) == 4:
                raise ValueError("files bigger than 5 PiB are not supported in a hash tree")
            levels.append(_group([sha256(item.serialize()) for item in levels[-1]]))
        root = _list_root(levels[-1])
        # Java keeps three levels (a fourth would only produce the root)
        kept = [tuple(level) for level in levels[:3]]
        kept += [()] * (3 - len(kept))
        return cls(root, kept[0], kept[1], kept[2])

    @classmethod
    def of_data(cls, data: bytes | memoryview) -> HashTree:
        """The tree of a whole file's bytes (one empty chunk for an empty file)."""
        return cls.build(chunk_hashes(data))

    def branch(self, chunk_index: int) -> HashBranch:
        """The branch stored with chunk `chunk_index` (Java `HashTree.branch`)."""
        if chunk_index < 0:
            raise ValueError("chunk index must be non-negative")

        def pick(level: tuple[ChunkHashList, ...], per: int) -> ChunkHashList | None:
            i = chunk_index // per
            return level[i] if i < len(level) else None

        l1 = pick(self.level1, HASHES_PER_LIST)
        l2 = pick(self.level2, HASHES_PER_LIST**2)
        l3 = pick(self.level3, HASHES_PER_LIST**3)
        if l1 is None:
            l2 = l3 = None
        elif l2 is None:
            l3 = None
        return HashBranch(self.root, l1, l2, l3)

    def to_cbor(self) -> CborValue:
        return {
            "r": self.root.to_cbor(),
            "ll1": [x.to_cbor() for x in self.level1],
            "ll2": [x.to_cbor() for x in self.level2],
            "ll3": [x.to_cbor() for x in self.level3],
        }

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        m = expect_map(value, "HashTree")
        only_keys(m, _HASH_TREE_KEYS, "HashTree")
        root = RootHash.from_cbor(cbor_field(m, "r", "HashTree"))
        levels = [
            tuple(
                ChunkHashList.from_cbor(x)
                for x in expect_list(cbor_field(m, k, "HashTree"), f"HashTree.{k}", max_len=1 << 20)
            )
            for k in ("ll1", "ll2", "ll3")
        ]
        return cls(root, *levels)


def hash_tree_root(hashes: Sequence[bytes]) -> bytes:
    """The 32-byte root over the given chunk sha256s (`sha256(cbor([ChunkHashList]))` up to 1024 chunks)."""
    return HashTree.build(hashes).root.hash


# ---- thumbnails and properties -------------------------------------------------------------------------
@dataclass(frozen=True)
class Thumbnail:
    """An inline preview image (at most 100 KiB)."""

    mime_type: str
    data: bytes = dc_field(repr=False)

    def __post_init__(self) -> None:
        if type(self.data) is not bytes or len(self.data) > MAX_THUMBNAIL_SIZE:
            raise ValueError("a thumbnail is at most 100 KiB of bytes")
        if type(self.mime_type) is not str or len(self.mime_type) > MAX_MIME_TYPE_LENGTH:
            raise ValueError("a thumbnail MIME type is a short string")


_PROPERTY_KEYS = frozenset({"c", "d", "h", "l", "m", "n", "p", "s", "t", "cn", "tn", "th", "i", "im"})


@dataclass(frozen=True)
class FileProperties(CborMixin):
    """Metadata of a file or directory (Peergos `FileProperties`), stored encrypted in FromParent."""

    name: str
    is_directory: bool
    size: int
    modified: Timestamp
    created: Timestamp
    mime_type: str = ""
    is_link: bool = False
    is_hidden: bool = False
    thumbnail: Thumbnail | None = None
    stream_secret: bytes | None = dc_field(default=None, repr=False)
    tree_hash: HashBranch | None = None

    def __post_init__(self) -> None:
        check_file_name(self.name)
        for flag in (self.is_directory, self.is_link, self.is_hidden):
            if type(flag) is not bool:
                raise ValueError("file property flags are bools")
        if type(self.size) is not int or not 0 <= self.size < (1 << 63):
            raise ValueError("size is a non-negative Java long")
        if not isinstance(self.modified, Timestamp) or not isinstance(self.created, Timestamp):
            raise ValueError("modified and created are Timestamps")
        if type(self.mime_type) is not str or len(self.mime_type) > MAX_MIME_TYPE_LENGTH:
            raise ValueError("a MIME type is a short string")
        if self.stream_secret is not None:
            if self.is_directory:
                raise ValueError("directories cannot have stream secrets")
            if type(self.stream_secret) is not bytes or len(self.stream_secret) != STREAM_SECRET_BYTES:
                raise ValueError("a stream secret is 32 bytes")

    @classmethod
    def file(
        cls,
        name: str,
        size: int,
        modified: Timestamp,
        mime_type: str,
        stream_secret: bytes | None,
        *,
        created: Timestamp | None = None,
        is_hidden: bool = False,
        thumbnail: Thumbnail | None = None,
        tree_hash: HashBranch | None = None,
    ) -> FileProperties:
        """Properties of a file (created defaults to modified, as Peergos uploads do)."""
        return cls(name, False, size, modified, created or modified, mime_type, False, is_hidden, thumbnail,
                   stream_secret, tree_hash)  # fmt: skip

    @classmethod
    def directory(cls, name: str, modified: Timestamp, *, is_hidden: bool = False) -> FileProperties:
        """Properties of a new directory as `mkdir` writes them (size 0, empty MIME type)."""
        return cls(name, True, 0, modified, modified, "", False, is_hidden)

    def with_hash(self, tree_hash: HashBranch | None) -> FileProperties:
        """The same properties with another hash-tree branch."""
        return replace(self, tree_hash=tree_hash)

    def with_size(self, size: int) -> FileProperties:
        """The same properties with a new size and no hash branch (Java `withSize`)."""
        return replace(self, size=size, tree_hash=None)

    def with_modified(self, modified: Timestamp) -> FileProperties:
        """The same properties with a new modification time."""
        return replace(self, modified=modified)

    def with_thumbnail(self, thumbnail: Thumbnail | None) -> FileProperties:
        """The same properties with another (or no) thumbnail."""
        return replace(self, thumbnail=thumbnail)

    def with_stream_secret(self, stream_secret: bytes) -> FileProperties:
        """The same properties with a new stream secret (key rotation, §6.9)."""
        return replace(self, stream_secret=stream_secret)

    def renamed(self, name: str) -> FileProperties:
        """The same properties under another name."""
        return replace(self, name=name)

    def as_link(self) -> FileProperties:
        """The properties of a link node pointing at this item (Java `asLink`)."""
        return replace(self, is_link=True)

    @property
    def chunk_count(self) -> int:
        """Number of 5 MiB chunks (at least 1)."""
        return chunk_count(self.size)

    def to_cbor(self) -> CborValue:
        m: dict[str, CborValue] = {
            "d": self.is_directory,
            "l": self.is_link,
            "n": self.name,
            "m": self.mime_type,
            "s": self.size,
            "t": self.modified.seconds,
            "tn": self.modified.nanos,
            "c": self.created.seconds,
            "cn": self.created.nanos,
            "h": self.is_hidden,
        }
        if self.tree_hash is not None:
            m["th"] = self.tree_hash.to_cbor()
        if self.thumbnail is not None:
            m["i"] = self.thumbnail.data
            m["im"] = self.thumbnail.mime_type
        if self.stream_secret is not None:
            m["p"] = self.stream_secret
        return m

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        ctx = "FileProperties"
        m = expect_map(value, ctx)
        only_keys(m, _PROPERTY_KEYS, ctx)
        is_dir = as_bool(cbor_field(m, "d", ctx), f"{ctx}.d")
        is_link = as_bool(m["l"], f"{ctx}.l") if "l" in m else False
        name = as_str(cbor_field(m, "n", ctx), f"{ctx}.n", max_len=2 * MAX_FILE_NAME_SIZE)
        mime = as_str(cbor_field(m, "m", ctx), f"{ctx}.m", max_len=MAX_MIME_TYPE_LENGTH)
        size = as_int(cbor_field(m, "s", ctx), f"{ctx}.s", 0)
        modified = _timestamp(cbor_field(m, "t", ctx), m.get("tn", 0), f"{ctx}.t")
        # Peergos defaults a missing creation time to the modification second
        created = _timestamp(m.get("c", modified.seconds), m.get("cn", 0), f"{ctx}.c")
        hidden = as_bool(cbor_field(m, "h", ctx), f"{ctx}.h")
        thumbnail = None
        if "i" in m:
            thumb_mime = DEFAULT_THUMBNAIL_MIME
            if "im" in m:
                thumb_mime = as_str(m["im"], f"{ctx}.im", max_len=MAX_MIME_TYPE_LENGTH)
            thumbnail = Thumbnail(thumb_mime, as_bytes(m["i"], f"{ctx}.i", max_len=MAX_THUMBNAIL_SIZE))
        elif "im" in m:
            raise DecodeError(f"{ctx}: thumbnail MIME type without a thumbnail")
        secret = as_bytes(m["p"], f"{ctx}.p", length=STREAM_SECRET_BYTES) if "p" in m else None
        tree = HashBranch.from_cbor(m["th"]) if "th" in m else None
        try:
            return cls(name, is_dir, size, modified, created, mime, is_link, hidden, thumbnail, secret, tree)
        except ValueError as e:
            raise DecodeError(f"{ctx}: {e}") from None


def chunk_count(size: int) -> int:
    """Number of 5 MiB chunks of a file of `size` bytes (1 for an empty file; Java `getNumberOfChunks`)."""
    if size < 0:
        raise ValueError("size must be non-negative")
    return max(1, -(-size // CHUNK_SIZE))


EMPTY = FileProperties(SUBSEQUENT_DIR_CHUNK_NAME, True, 0, Timestamp.MIN, Timestamp.MIN)
"""`FileProperties.EMPTY`: the properties of a directory's overflow chunks (§6.6)."""


def chunk_hashes(data: bytes | memoryview) -> list[bytes]:
    """sha256 of each 5 MiB chunk of `data` (one hash of b"" for empty data)."""
    view = memoryview(data)
    return [sha256(view[i : i + CHUNK_SIZE]) for i in range(0, len(view), CHUNK_SIZE)] or [sha256(b"")]


__all__ = [
    "CHUNK_SIZE",
    "EMPTY",
    "MAX_EPOCH_SECOND",
    "MAX_FILE_NAME_SIZE",
    "MIN_EPOCH_SECOND",
    "STREAM_SECRET_BYTES",
    "SUBSEQUENT_DIR_CHUNK_NAME",
    "ChunkHashList",
    "FileProperties",
    "HashBranch",
    "HashTree",
    "RootHash",
    "Thumbnail",
    "Timestamp",
    "check_file_name",
    "check_path_element",
    "chunk_count",
    "chunk_hashes",
    "hash_tree_root",
    "java_length",
]
