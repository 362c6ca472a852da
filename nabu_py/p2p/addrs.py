"""Multiaddr helpers (multiformats/multiaddr; libp2p specs, addressing/README.md).

`parse_multiaddr` accepts text, bytes or a `Multiaddr`, rewrites the legacy `/ipfs/<id>` spelling to
`/p2p/<id>` (Nabu's and kubo's bootstrap lists still use it; multiaddr 0.2.0 rejects it) and raises
`DecodeError` for anything malformed or longer than `MAX_ADDR_TEXT`. `split_peer` separates a trailing
`/p2p/<peer id>` from the transport part, which is how addresses travel in bootstrap lists and how
the address book stores them (without the suffix).
"""

from __future__ import annotations

from typing import Final

from multiaddr import Multiaddr

from nabu_py.errors import DecodeError
from nabu_py.p2p.peer_id import PeerId

__all__ = ["MAX_ADDR_TEXT", "parse_multiaddr", "split_peer", "with_peer"]

MAX_ADDR_TEXT: Final = 1024
MAX_ADDR_BYTES: Final = 512


def parse_multiaddr(addr: Multiaddr | str | bytes) -> Multiaddr:
    """A validated Multiaddr; DecodeError if `addr` is malformed."""
    if isinstance(addr, Multiaddr):
        return addr
    if isinstance(addr, bytes):
        if len(addr) > MAX_ADDR_BYTES:
            raise DecodeError("multiaddr too long")
        try:
            maddr = Multiaddr(addr)
            str(maddr)  # multiaddr 0.2.0 parses binary input lazily; force it here
            return maddr
        except Exception as e:  # multiaddr raises assorted types for bad input
            raise DecodeError(f"invalid binary multiaddr: {e}") from None
    text = addr.strip()
    if not text.startswith("/") or len(text) > MAX_ADDR_TEXT:
        raise DecodeError("multiaddr text must start with '/' and be at most 1 KiB")
    text = text.replace("/ipfs/", "/p2p/")
    try:
        maddr = Multiaddr(text)
        maddr.to_bytes()
        return maddr
    except Exception as e:
        raise DecodeError(f"invalid multiaddr {text[:80]!r}: {e}") from None


def split_peer(addr: Multiaddr | str | bytes) -> tuple[Multiaddr | None, PeerId | None]:
    """(transport part or None if nothing precedes the id, trailing peer id or None)."""
    maddr = parse_multiaddr(addr)
    items = list(maddr.items())
    if not items or items[-1][0].name != "p2p":
        return maddr, None
    peer = PeerId.parse(str(items[-1][1]))
    text = str(maddr)
    suffix = f"/p2p/{items[-1][1]}"
    rest = text[: -len(suffix)] if text.endswith(suffix) else ""
    return (Multiaddr(rest) if rest else None), peer


def with_peer(addr: Multiaddr, peer: PeerId) -> Multiaddr:
    """`addr` + `/p2p/<peer>`."""
    return Multiaddr(f"{addr}/p2p/{peer.to_base58()}")
