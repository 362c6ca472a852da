"""The embeddable node in one process over real loopback sockets: two `NabuNode`s, a proxy target, the
HTTP API served by hypercorn, and an HTTP client. Covers what an embedding application (the Peergos
server) relies on: `node.http.request` by peer id, the `/p2p/` gateway, the Nabu API, limits."""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import h11
import httpx
import pytest
import trio

from nabu_py.api import serving
from nabu_py.blockstore import open_blockstore
from nabu_py.multiformats.cid import CODEC_RAW, Cid
from nabu_py.node import NabuNode, NodeConfig
from nabu_py.p2p import HostIdentity, PeerId
from nabu_py.protocols.http_proxy import HttpProxyConfig, PeerNotFound, ProxyError
from tests.helpers.p2p import wait_for

TIMEOUT = 30


@dataclass
class Target:
    """A small HTTP server standing in for the Peergos server behind a node (the proxy target)."""

    seen: list[tuple[str, dict[str, str], int, str]] = field(default_factory=list)
    hold: trio.Event = field(default_factory=trio.Event)
    drip_completed: bool = False

    async def handle(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        h = hashlib.sha256()
        n = 0
        req: h11.Request | None = None
        body = bytearray()
        try:
            while True:
                ev = conn.next_event()
                if ev is h11.NEED_DATA:
                    conn.receive_data(await stream.receive_some(1 << 20))
                    continue
                if isinstance(ev, h11.Request):
                    req = ev
                elif isinstance(ev, h11.Data):
                    h.update(ev.data)
                    n += len(ev.data)
                    if len(body) < 64 << 20:
                        body += ev.data
                elif isinstance(ev, (h11.EndOfMessage, h11.ConnectionClosed)):
                    break
            assert req is not None
            headers = {k.decode().lower(): v.decode() for k, v in req.headers}
            path = req.target.decode()
            self.seen.append((path, headers, n, h.hexdigest()))
            status, out_headers, out = 200, [(b"x-target", b"yes")], b""
            if path.startswith("/echo"):
                out = bytes(body)
            elif path.startswith("/missing"):
                status, out = 404, b"no such thing"
            elif path.startswith("/hold"):
                await self.hold.wait()
                out = b"released"
            elif path.startswith("/drip"):
                # 8 MiB: the first MiB at once, the rest once released
                await stream.send_all(
                    conn.send(
                        h11.Response(status_code=200, headers=[(b"content-length", str(8 << 20).encode())])
                    )
                )
                await stream.send_all(conn.send(h11.Data(data=bytes(1 << 20))))
                await self.hold.wait()
                for _ in range(7):
                    await stream.send_all(conn.send(h11.Data(data=bytes(1 << 20))))
                    await trio.sleep(0.05)
                await stream.send_all(conn.send(h11.EndOfMessage()))
                self.drip_completed = True
                return
            else:
                out = json.dumps(
                    {"path": path, "source": headers.get("source"), "n": n, "sha": h.hexdigest()}
                ).encode()
            out_headers.append((b"content-length", str(len(out)).encode()))
            await stream.send_all(conn.send(h11.Response(status_code=status, headers=out_headers)))
            await stream.send_all(conn.send(h11.Data(data=out)) + conn.send(h11.EndOfMessage()))
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError):
            pass
        finally:
            await stream.aclose()


@dataclass
class Net:
    a: NabuNode
    b: NabuNode
    url: str
    """A's API base URL."""
    target: Target
    client: httpx.AsyncClient


@asynccontextmanager
async def network(
    tmp_path: Path, b_proxy: HttpProxyConfig | None = None, a_proxy: HttpProxyConfig | None = None
) -> AsyncIterator[Net]:
    target = Target()
    store = open_blockstore("hybrid", tmp_path / "blocks")
    try:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(trio.serve_tcp, target.handle, 0, host="127.0.0.1"))
            port = listeners[0].socket.getsockname()[1]
            b_cfg = NodeConfig(
                HostIdentity.generate(),
                proxy_target=("127.0.0.1", port),
                http_proxy=b_proxy or HttpProxyConfig(),
            )
            a_cfg = NodeConfig(HostIdentity.generate(), http_proxy=a_proxy or HttpProxyConfig())
            async with (
                NabuNode.open(b_cfg) as b,
                NabuNode.open(a_cfg, blockstore=store) as a,
                serving(a.api_app(), "127.0.0.1", 0) as url,
                httpx.AsyncClient(base_url=url, timeout=TIMEOUT) as client,
            ):
                a.host.address_book.add(b.peer_id, b.host.listen_addrs)
                yield Net(a, b, url, target, client)
            nursery.cancel_scope.cancel()
    finally:
        store.close()


def p2p(peer: PeerId | str, path: str) -> str:
    return f"/p2p/{peer}/http{path}"


async def test_post_reaches_the_target_with_source_host_path_query_and_headers(tmp_path: Path) -> None:
    async with network(tmp_path) as net:
        with trio.fail_after(TIMEOUT):
            r = await net.client.post(
                p2p(net.b.peer_id, "/api/v0/x?arg=1&arg=a%2Bb"),
                content=b"hello",
                headers={"Source": "forged", "X-Custom": "kept"},
            )
        assert r.status_code == 200 and r.headers["x-target"] == "yes"
        answer = r.json()
        assert answer["path"] == "/api/v0/x?arg=1&arg=a%2Bb", "path and query arrive byte for byte"
        assert answer["source"] == net.a.peer_id.to_base58(), "Source is the caller's peer id, never forged"
        assert answer["n"] == 5 and answer["sha"] == hashlib.sha256(b"hello").hexdigest()
        _path, headers, _n, _sha = net.target.seen[-1]
        assert headers["x-custom"] == "kept"
        # the peer id may be given in its CID forms too
        r = await net.client.post(p2p(net.b.peer_id.to_cid_string("base32"), "/other"), content=b"")
        assert r.status_code == 200 and r.json()["path"] == "/other"


async def test_status_headers_and_large_bodies_both_ways(tmp_path: Path) -> None:
    body = bytes(range(256)) * (20 * 4096)  # 20 MiB
    async with network(tmp_path) as net:
        with trio.fail_after(TIMEOUT):
            r = await net.client.post(p2p(net.b.peer_id, "/echo"), content=body)
            assert r.status_code == 200 and r.content == body
            assert r.headers["content-length"] == str(len(body))
            r = await net.client.post(p2p(net.b.peer_id, "/missing"), content=b"")
            assert r.status_code == 404 and r.content == b"no such thing"


async def test_embedded_calls_by_peer_id_stream_and_use_the_peer_router(tmp_path: Path) -> None:
    async with network(tmp_path) as net:
        net.a.host.address_book.remove(net.b.peer_id)
        with pytest.raises(PeerNotFound, match="Target not found"):
            await net.a.http.request(net.b.peer_id, "POST", "/x")
        asked: list[PeerId] = []

        async def router(peer: PeerId) -> list[object]:
            asked.append(peer)
            return list(net.b.host.listen_addrs)

        net.a.host.set_peer_router(router)  # type: ignore[arg-type]

        async def chunks() -> AsyncIterator[bytes]:
            for i in range(64):
                yield bytes([i]) * 65536

        with trio.fail_after(TIMEOUT):
            resp = await net.a.http.request(net.b.peer_id.to_base58(), "POST", "/echo", [], chunks(), None)
            received = b"".join([c async for c in resp.body])
        assert asked == [net.b.peer_id]
        assert received == b"".join(bytes([i]) * 65536 for i in range(64))
        await wait_for(lambda: net.b.http.inbound_in_progress == 0)
        with pytest.raises(ProxyError, match="ourselves"):
            await net.a.http.request(net.a.peer_id, "POST", "/x")


async def test_gateway_errors(tmp_path: Path) -> None:
    async with network(tmp_path) as net:
        unknown = HostIdentity.generate().peer_id
        with trio.fail_after(TIMEOUT):
            r = await net.client.get(p2p(net.b.peer_id, "/x"))
            assert r.status_code == 403 and r.content == b"", "POST only, like Nabu"
            r = await net.client.post(p2p(unknown, "/x"))
            assert r.status_code == 400
            assert urllib.parse.unquote_plus(r.headers["trailer"]).startswith(f"Target not found: {unknown}")
            r = await net.client.post("/p2p/notapeer/http/x")
            assert r.status_code == 400 and "invalid peer id" in urllib.parse.unquote_plus(
                r.headers["trailer"]
            )
            r = await net.client.post(f"/p2p/{net.b.peer_id}/nohttp")
            assert r.status_code == 400
            r = await net.client.post(p2p(net.a.peer_id, "/x"))
            assert r.status_code == 502 and "ourselves" in r.text
            r = await net.client.post("/elsewhere")
            assert r.status_code == 404
            # the node still serves
            r = await net.client.post(p2p(net.b.peer_id, "/fine"))
            assert r.status_code == 200


async def test_limits_overload_and_timeouts(tmp_path: Path) -> None:
    b_proxy = HttpProxyConfig(max_inbound_streams=1, response_timeout=1.0, max_body=1 << 20)
    a_proxy = HttpProxyConfig(max_body=4 << 20)
    async with network(tmp_path, b_proxy, a_proxy) as net:
        with trio.fail_after(TIMEOUT):
            # declared body over the caller's limit: refused before dialing
            r = await net.client.post(p2p(net.b.peer_id, "/x"), content=bytes(5 << 20))
            assert r.status_code == 413
            # over the serving side's limit: B answers 413
            r = await net.client.post(p2p(net.b.peer_id, "/x"), content=bytes(2 << 20))
            assert r.status_code == 413
            # the target does not answer within B's response timeout: 502 from B
            r = await net.client.post(p2p(net.b.peer_id, "/hold"))
            assert r.status_code == 502 and "TooSlowError" in r.text
            # one slot on B: while a request holds it, the next one is refused with 503
            held = trio.Event()

            async def hold() -> None:
                resp = await net.client.post(p2p(net.b.peer_id, "/hold"))
                assert resp.status_code == 502  # B's 1 s response timeout
                held.set()

            await wait_for(lambda: net.b.http.inbound_in_progress == 0)  # B finishing the last one
            async with trio.open_nursery() as n:
                n.start_soon(hold)
                await wait_for(lambda: net.b.http.inbound_in_progress == 1)
                r = await net.client.post(p2p(net.b.peer_id, "/x"))
                assert r.status_code == 503
            assert held.is_set()
            r = await net.client.post(p2p(net.b.peer_id, "/x"))
            assert r.status_code == 200


async def test_caller_hanging_up_resets_the_transfer(tmp_path: Path) -> None:
    async with network(tmp_path) as net:
        with trio.fail_after(TIMEOUT):
            host, port = net.url.removeprefix("http://").rsplit(":", 1)
            sock = await trio.open_tcp_stream(host, int(port))
            path = p2p(net.b.peer_id, "/drip")
            await sock.send_all(f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n".encode())
            got = b""
            while len(got) < 1 << 20:
                got += await sock.receive_some(1 << 20)
            assert got.startswith(b"HTTP/1.1 200")
            await sock.aclose()
            # The caller is gone. hypercorn reads nothing while a request is being answered, so the
            # gateway learns of it when the next chunk cannot be delivered; then the /http stream is
            # reset and B drops the target's connection instead of relaying the remaining 7 MiB.
            net.target.hold.set()
            await wait_for(lambda: net.b.http.inbound_in_progress == 0, within=TIMEOUT)
            await trio.sleep(0.5)
        assert not net.target.drip_completed


async def api(client: httpx.AsyncClient, path: str, **kw: object) -> httpx.Response:
    return await client.post(f"/api/v0/{path}", **kw)  # type: ignore[arg-type]


async def test_nabu_api(tmp_path: Path) -> None:
    async with network(tmp_path) as net:
        c = net.client
        with trio.fail_after(TIMEOUT):
            assert (await api(c, "id")).content == f'{{"ID":"{net.a.peer_id.to_base58()}"}}'.encode()
            assert (await api(c, "version")).json() == {"Version": "0.9.0"}
            r = await api(c, "block/put?format=raw", files={"file": ("b", b"block one")})
            cid = Cid.for_block(CODEC_RAW, b"block one")
            assert r.json() == {"Hash": cid.to_base32()}
            r = await api(c, "block/put?format=dag-cbor", files={"file": ("b", b"\xa0")})
            cbor_cid = Cid.parse(r.json()["Hash"])
            assert cbor_cid.codec == 0x71
            assert (await api(c, f"block/get?arg={cid}")).content == b"block one"
            assert (await api(c, f"block/stat?arg={cid.to_base32()}")).json() == {"Size": 9}
            assert (await api(c, f"block/has?arg={cid}")).content == b"true"
            refs = (await api(c, "refs/local")).content.decode()
            assert refs.count('"Err":""') == 2 and f'{{"Ref":"{cid.to_base32()}","Err":""}}' in refs
            assert (await api(c, f"block/rm?arg={cid}")).json() == {"Error": "", "Hash": cid.to_base32()}
            assert (await api(c, f"block/has?arg={cid}")).content == b"false"
            # errors: 400 with the reason in Trailer
            for path, kw, reason in [
                (f"block/get?arg={cid}", {}, "block not found"),
                (f"block/rm?arg={cid}", {}, "block not found"),
                (f"block/stat?arg={cid}", {}, "block not found"),
                ("block/get", {}, 'argument "ipfs-path" is required'),
                ("block/get?arg=notacid", {}, "invalid CID"),
                ("block/put", {"files": {"f": ("b", b"x")}}, 'argument "format" is required'),
                ("block/put?format=nope", {"files": {"f": ("b", b"x")}}, "unsupported format"),
                ("block/put?format=raw", {"content": b"not multipart"}, "multipart"),
                (
                    "block/put?format=raw",
                    {"files": [("a", ("a", b"1")), ("b", ("b", b"2"))]},
                    "Multiple input not supported",
                ),
                (
                    "block/put?format=raw",
                    {"files": {"f": ("b", bytes(2 * 1024 * 1024 + 1))}},
                    "Block too large",
                ),
            ]:
                r = await api(c, path, **kw)
                assert r.status_code == 400, path
                assert reason in urllib.parse.unquote_plus(r.headers["trailer"]), (path, r.headers["trailer"])
            assert (await c.get("/api/v0/id")).status_code == 403
            assert (await api(c, "nope")).status_code == 404
            assert (await api(c, "id")).status_code == 200


async def test_node_without_blockstore_serves_only_id_and_version(tmp_path: Path) -> None:
    async with (
        network(tmp_path) as net,
        serving(net.b.api_app(), "127.0.0.1", 0) as url,
        httpx.AsyncClient(base_url=url, timeout=TIMEOUT) as c,
    ):
        assert (await api(c, "id")).json() == {"ID": net.b.peer_id.to_base58()}
        assert (await api(c, "block/has?arg=x")).status_code == 404
