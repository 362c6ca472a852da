"""Pure parts of the local HTTP side: `/p2p/<peer>/http/...` URLs, multipart bodies, query strings,
`Trailer` encoding, the `nabu` command line."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import pytest

from nabu_py.api import parse_multipart
from nabu_py.cli import UsageError, ipfs_path, parse_args
from nabu_py.errors import DecodeError
from nabu_py.httputil import parse_query, trailer_value
from nabu_py.p2p import HostIdentity
from nabu_py.protocols.http_proxy import parse_gateway_path
from nabu_py.tuning import tune_allocator

PEER = HostIdentity.generate(bytes(range(32))).peer_id
RSA_STYLE = "QmaCpDMGvV2BGHeYERUEnRQAwe3N8SzbUtfsmvsqQLuvuJ"


@pytest.mark.parametrize(
    "text",
    [
        PEER.to_base58(),
        PEER.to_cid_string("base32"),
        PEER.to_cid_string("base36"),
        "z" + PEER.to_cid_string("base58btc")[1:],
    ],
)
def test_gateway_path_accepts_every_peer_id_form(text: str) -> None:
    peer, target = parse_gateway_path(f"/p2p/{text}/http/api/v0/id".encode(), b"")
    assert peer == PEER and target == "/api/v0/id"


def test_gateway_path_keeps_path_and_query_byte_for_byte() -> None:
    raw = f"/p2p/{RSA_STYLE}/http/a%20b/c".encode()
    peer, target = parse_gateway_path(raw, b"arg=x%2By&arg=2&flag")
    assert peer.to_base58() == RSA_STYLE
    assert target == "/a%20b/c?arg=x%2By&arg=2&flag"
    assert parse_gateway_path(f"/p2p/{RSA_STYLE}/http".encode(), b"")[1] == "/"
    assert parse_gateway_path(f"/p2p/{RSA_STYLE}/http/".encode(), b"q=1")[1] == "/?q=1"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"/p2p/notapeer/http/x", "invalid peer id 'notapeer'"),
        (f"/p2p/{RSA_STYLE}".encode(), "include path"),
        (f"/p2p/{RSA_STYLE}/ws/x".encode(), "http request"),
        (f"/p2p/{RSA_STYLE}/httpx/y".encode(), "http request"),
        (b"/p2p//http/x", "peer id"),
        (b"/p2p/%2Fip4%2F127.0.0.1%2Ftcp%2F1/http/x", "invalid peer id"),
        (b"/p2p/\xff\xfe/http/x", "invalid peer id"),
        (b"/api/v0/id", "starting with /p2p/"),
        (f"/p2p/{RSA_STYLE}/http/\xe9".encode(), "ASCII"),
    ],
)
def test_gateway_path_rejects(raw: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        parse_gateway_path(raw, b"")


def multipart(parts: list[bytes], boundary: str = "XyZ") -> bytes:
    out = b""
    for i, part in enumerate(parts):
        out += (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file{i}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + part
            + b"\r\n"
        )
    return out + f"--{boundary}--\r\n".encode()


def test_multipart_parts() -> None:
    block = bytes(range(256)) + b"\r\n--XY not the boundary\r\n\r\n"
    assert parse_multipart(multipart([block]), "multipart/form-data; boundary=XyZ") == [block]
    assert parse_multipart(multipart([b"a", b""]), 'multipart/form-data; boundary="XyZ"') == [b"a", b""]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (multipart([b"a"]), "application/octet-stream"),
        (multipart([b"a"]), "multipart/form-data"),
        (b"--XyZ\r\nno blank line\r\n--XyZ--", "multipart/form-data; boundary=XyZ"),
        (b"--XyZ\r\n\r\nunterminated", "multipart/form-data; boundary=XyZ"),
        (b"--XyZ\r\n\r\ncontent\r\n--XyZ\r\n", "multipart/form-data; boundary=XyZ"),
        (b"garbage", "multipart/form-data; boundary=XyZ"),
        (multipart([]), "multipart/form-data; boundary=XyZ"),
        (multipart([b"a"], "B" * 300), "multipart/form-data; boundary=" + "B" * 300),
    ],
)
def test_multipart_rejects(body: bytes, content_type: str) -> None:
    with pytest.raises(DecodeError):
        parse_multipart(body, content_type)


def test_query_and_trailer_conventions() -> None:
    assert parse_query(b"arg=a&arg=b%2Bc&x=&y") == {"arg": ["a", "b+c"], "x": [""], "y": [""]}
    assert parse_query("") == {}
    message = "Target not found: Qm.. (a/b & ü)"
    assert urllib.parse.unquote_plus(trailer_value(message).decode()) == message
    assert len(trailer_value("x" * 10_000)) == 2000


def test_command_line() -> None:
    assert parse_args(["daemon", "-Addresses.API", "/ip4/127.0.0.1/tcp/5002", "--IPFS_PATH", "/tmp/x"]) == (
        "daemon",
        {"Addresses.API": "/ip4/127.0.0.1/tcp/5002", "IPFS_PATH": "/tmp/x"},
    )
    assert parse_args(["init", "-Bootstrap=", "-log-to-console"]) == (
        "init",
        {"Bootstrap": "", "log-to-console": "true"},
    )
    for bad in (["-Addresses.API", "x"], ["daemon", "stray"], ["daemon", "-Nope", "1"], ["daemon", "--"], []):
        with pytest.raises(UsageError):
            parse_args(bad)


def test_ipfs_path_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IPFS_PATH", str(tmp_path / "env"))
    assert ipfs_path({"IPFS_PATH": str(tmp_path / "arg")}) == tmp_path / "arg"
    assert ipfs_path({}) == tmp_path / "env"
    monkeypatch.delenv("IPFS_PATH")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert ipfs_path({}) == tmp_path / ".ipfs"


def test_tune_allocator_validates() -> None:
    with pytest.raises(ValueError):
        tune_allocator(mmap_threshold=0)
    with pytest.raises(ValueError):
        tune_allocator(mmap_threshold=1 << 20, trim_threshold=1 << 10)
    assert isinstance(tune_allocator(), bool)
