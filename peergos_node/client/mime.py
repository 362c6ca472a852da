"""MIME types for uploaded files (spec/peergos.md §6.3 `m`; Java `MimeTypes.calculateMimeType`).

The type is stored encrypted in the file's properties and its directory entry. Like Peergos we look at
the first bytes for well-known signatures, then at the file name's extension, then call UTF-8 text without
control characters `text/plain`; anything else is `application/octet-stream`.
"""

from __future__ import annotations

import mimetypes

HEAD_BYTES = 512
"""How many leading bytes the sniffing looks at."""

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"BM", "image/bmp"),
    (b"%PDF", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
    (b"\x1f\x8b\x08", "application/gzip"),
    (b"Rar!\x1a\x07", "application/x-rar-compressed"),
    (b"\x00asm", "application/wasm"),
    (b"ID3", "audio/mpeg"),
    (b"fLaC", "audio/flac"),
    (b"OggS", "audio/ogg"),
    (b"\x1aE\xdf\xa3", "video/webm"),
    (b"BEGIN:VCALENDAR", "text/calendar"),
    (b"BEGIN:VCARD", "text/vcard"),
    (b"<svg ", "image/svg+xml"),
)


def guess_mime_type(name: str, head: bytes) -> str:
    """The MIME type of a file called `name` starting with `head`."""
    for magic, mime in _MAGIC:
        if head.startswith(magic):
            return mime
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[4:8] == b"ftyp":
        return "video/mp4"
    by_name, _ = mimetypes.guess_type(name, strict=False)
    if by_name is not None:
        return by_name
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # a multi-byte character may be cut at the end of the sample
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return "application/octet-stream"
    if all(ch.isprintable() or ch in "\t\r\n\f" for ch in text):
        return "text/plain"
    return "application/octet-stream"


__all__ = ["HEAD_BYTES", "guess_mime_type"]
