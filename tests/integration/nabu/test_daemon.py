"""Acceptance tests of the nabu_py node (issue "nabu_py p2p node"): real `nabu daemon` OS processes on
loopback, each with its own IPFS_PATH and ports.

Topology (module fixture): a small HTTP server in this process is the proxy target of daemons B and B2;
daemon A bootstraps to both, so it knows their addresses. Requests go to A's API at
`/p2p/<B>/http/<path>`. B2 listens on a fixed port so that it can be killed and restarted where A
expects it. The misbehaving peer is this test process, with its own p2p host.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import signal
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trio

from nabu_py.p2p import HostConfig, HostIdentity, P2PHost, ProtocolNegotiationError
from tests.helpers.procs import Proc, nabu, run_cli, running

START = r"nabu daemon started: peer id (\S+), swarm (.+), API (http://\S+), proxy target (\S+), blocks"
STEP = 30.0
"""Seconds any single network step may take."""


# ---- the proxy target -----------------------------------------------------------------------------------
@dataclass
class TargetState:
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: list[dict[str, Any]] = field(default_factory=list)
    upload_progress: int = 0
    download_started: threading.Event = field(default_factory=threading.Event)


class TargetHandler(BaseHTTPRequestHandler):
    """`/echo`: the body back; `/slow-download`: 64 MiB slowly; anything else: what arrived, as JSON."""

    protocol_version = "HTTP/1.1"
    state: TargetState

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        h = hashlib.sha256()
        body = bytearray()
        left = length
        with self.state.lock:
            self.state.upload_progress = 0
        while left:
            chunk = self.rfile.read(min(65536, left))
            if not chunk:
                return
            left -= len(chunk)
            h.update(chunk)
            if self.path.startswith("/echo"):
                body += chunk
            with self.state.lock:
                self.state.upload_progress += len(chunk)
        info = {
            "path": self.path,
            "source": self.headers.get("Source"),
            "host": self.headers.get("Host"),
            "n": length,
            "sha": h.hexdigest(),
        }
        with self.state.lock:
            self.state.requests.append(info)
        if self.path.startswith("/slow-download"):
            self._slow_download()
            return
        out = bytes(body) if self.path.startswith("/echo") else json.dumps(info).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def _slow_download(self) -> None:
        total = 64 << 20
        self.send_response(200)
        self.send_header("Content-Length", str(total))
        self.end_headers()
        chunk = bytes(256 * 1024)
        try:
            for i in range(total // len(chunk)):
                self.wfile.write(chunk)
                self.wfile.flush()
                if i == 8:
                    self.state.download_started.set()
                time.sleep(0.05)
        except OSError:
            pass  # the node relaying it went away

    def log_message(self, format: str, *args: Any) -> None:
        return


@dataclass
class Daemon:
    """A `nabu daemon` process and what its startup line said."""

    path: Path
    proc: Proc
    peer_id: str
    swarm: str
    api: str

    def p2p_addr(self) -> str:
        return f"{self.swarm.split()[0]}/p2p/{self.peer_id}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def init(path: Path, *overrides: str) -> None:
    args = [
        "init",
        "-IPFS_PATH",
        str(path),
        "-Bootstrap",
        "",
        "-Addresses.Swarm",
        "/ip4/127.0.0.1/tcp/0",
        "-Addresses.API",
        "/ip4/127.0.0.1/tcp/0",
        *overrides,
    ]
    r = run_cli(nabu(*args), timeout=STEP * 2)
    assert r.returncode == 0, r.stderr
    assert "initialized nabu node" in r.stdout


def start(path: Path, *overrides: str) -> tuple[Proc, Any]:
    """Start `nabu daemon` (the caller owns the process) and wait for its startup line."""
    proc = Proc(nabu("daemon", "-IPFS_PATH", str(path), "-log-level", "WARNING", *overrides))
    try:
        m = proc.wait_for(START, timeout=STEP * 2)
    except BaseException:
        proc.kill()
        raise
    return proc, m


def daemon(path: Path, *overrides: str) -> Daemon:
    proc, m = start(path, *overrides)
    return Daemon(path, proc, m.group(1), m.group(2), m.group(3))


@dataclass
class Net:
    target: TargetState
    target_port: int
    a: Daemon
    b: Daemon
    b2: Daemon
    b2_port: int


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    root = tmp_path_factory.mktemp("nabu-net")
    state = TargetState()
    handler = type("Handler", (TargetHandler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    started: list[Daemon] = []
    try:
        target = f"/ip4/127.0.0.1/tcp/{server.server_address[1]}"
        init(root / "b", "-Addresses.ProxyTarget", target)
        b2_port = free_port()
        init(
            root / "b2", "-Addresses.ProxyTarget", target, "-Addresses.Swarm", f"/ip4/127.0.0.1/tcp/{b2_port}"
        )
        b = daemon(root / "b")
        started.append(b)
        b2 = daemon(root / "b2")
        started.append(b2)
        init(root / "a", "-Bootstrap", f"{b.p2p_addr()},{b2.p2p_addr()}", "-Addresses.ProxyTarget", "")
        a = daemon(root / "a")
        started.append(a)
        network = Net(state, server.server_address[1], a, b, b2, b2_port)
        yield network
        started.append(network.b2)  # the test that restarts B2 leaves its last incarnation here
    finally:
        for d in started:
            d.proc.kill()
        server.shutdown()
        server.server_close()
        thread.join(10)


# ---- helpers ------------------------------------------------------------------------------------------
def post(
    url: str, body: bytes | None = b"", method: str = "POST", timeout: float = STEP
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one request; HTTP errors are results, not exceptions."""
    req = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def via(a: Daemon, peer: str, path: str) -> str:
    return f"{a.api}/p2p/{peer}/http{path}"


def trailer(headers: dict[str, str]) -> str:
    return urllib.parse.unquote_plus(headers.get("trailer", ""))


def assert_serving(net: Net) -> None:
    """Proof that A (and B) still serve: a successful proxied request."""
    status, _h, body = post(via(net.a, net.b.peer_id, "/still-serving?x=1"), b"ok")
    assert status == 200, body
    assert json.loads(body)["source"] == net.a.peer_id


# ---- acceptance -----------------------------------------------------------------------------------------
def test_post_reaches_b_target_with_the_source_header(net: Net) -> None:
    status, headers, body = post(via(net.a, net.b.peer_id, "/api/v0/block/get?arg=zb2rh&auth=ab"), b"hello")
    assert status == 200, (headers, body)
    info = json.loads(body)
    assert info["source"] == net.a.peer_id, "Source is the caller's peer id (base58)"
    assert info["path"] == "/api/v0/block/get?arg=zb2rh&auth=ab"
    assert info["n"] == 5 and info["sha"] == hashlib.sha256(b"hello").hexdigest()
    # the identity check: the id A's API reports is the one B's target saw
    status, _h, ident = post(f"{net.a.api}/api/v0/id")
    assert status == 200 and json.loads(ident) == {"ID": net.a.peer_id}


def test_20_mib_arrives_byte_identical_both_ways(net: Net) -> None:
    body = hashlib.sha256(b"seed").digest() * (20 * 1024 * 1024 // 32)
    assert len(body) == 20 << 20
    status, headers, echoed = post(via(net.a, net.b.peer_id, "/echo"), body)
    assert status == 200 and headers["content-length"] == str(20 << 20)
    with net.target.lock:
        seen = net.target.requests[-1]
    assert seen["n"] == len(body) and seen["sha"] == hashlib.sha256(body).hexdigest(), "A -> B intact"
    assert echoed == body, "B -> A intact"


async def test_bad_input_gets_clear_errors_and_the_nodes_keep_serving(net: Net) -> None:
    # -- on the p2p side, against B, from a peer of our own
    async with P2PHost.open(HostConfig(identity=HostIdentity.generate())) as me:
        with trio.fail_after(STEP):
            peer = await me.connect(net.b.p2p_addr())

            async def exchange(data: bytes) -> bytes:
                stream = await me.new_stream(peer, ["/http"])
                await stream.write(data)
                reply = await stream.read_to_eof(1 << 20)
                await stream.close()
                return reply

            reply = await exchange(b"\x00\x01\x02 this is not HTTP\r\n\r\n")
            assert reply.startswith(b"HTTP/1.1 400"), reply[:200]
            head = b"POST / HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * (100 * 1024) + b"\r\n\r\n"
            reply = await exchange(head)
            assert reply.startswith(b"HTTP/1.1 400"), "an oversize head is refused"
            reply = await exchange(b"POST /x HTTP/1.1\r\nhost: x\r\ncontent-length: 1099511627776\r\n\r\n")
            assert reply.startswith(b"HTTP/1.1 413"), "an oversize body is refused before it is read"
            reply = await exchange(b"GET /x HTTP/1.1\r\nhost: x\r\n\r\n")
            assert reply.startswith(b"HTTP/1.1 405")
            with pytest.raises(ProtocolNegotiationError):
                await me.new_stream(peer, ["/no/such/protocol/1.0.0"])
            # and a well-formed request from us works, with our id as Source
            reply = await exchange(b"POST /from-test HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\nhi")
            assert reply.startswith(b"HTTP/1.1 200") and me.peer_id.to_base58().encode() in reply
    await trio.to_thread.run_sync(assert_serving, net)

    # -- on A's API
    def api_errors() -> None:
        for url, expected in [
            (f"{net.a.api}/p2p/notapeer/http/x", "invalid peer id"),
            (f"{net.a.api}/p2p/%2Fip4%2F127.0.0.1%2Ftcp%2F1/http/x", "invalid peer id"),
            (f"{net.a.api}/p2p/{net.b.peer_id}/nothttp/x", "Expecting path to be a http request"),
            (f"{net.a.api}/p2p/{net.b.peer_id}", "include path"),
            (f"{net.a.api}/p2p/{HostIdentity.generate().peer_id}/http/x", "Target not found"),
            (f"{net.a.api}/api/v0/block/get?arg=/ip4/1.2.3.4", "invalid CID"),
        ]:
            status, headers, _body = post(url, b"body")
            assert status == 400, url
            assert expected in trailer(headers), (url, trailer(headers))
        status, _h, _b = post(via(net.a, net.b.peer_id, "/x"), None, method="GET")
        assert status == 403, "POST only"
        assert_serving(net)

    await trio.to_thread.run_sync(api_errors)


def test_killing_b_mid_transfer_gives_a_clean_error(net: Net) -> None:
    b2 = net.b2
    # download: B2's target streams 64 MiB slowly; B2 dies once the transfer is under way
    conn = http.client.HTTPConnection(net.a.api.removeprefix("http://"), timeout=STEP)
    try:
        conn.request("POST", f"/p2p/{b2.peer_id}/http/slow-download", body=b"")
        resp = conn.getresponse()
        assert resp.status == 200
        assert len(resp.read(1 << 20)) == 1 << 20
        assert net.target.download_started.wait(STEP)
        b2.proc.signal(signal.SIGKILL)
        b2.proc.wait(STEP)
        t0 = time.monotonic()
        with pytest.raises((http.client.IncompleteRead, ConnectionError)):
            resp.read()  # the rest: the connection ends before the declared 64 MiB
        assert time.monotonic() - t0 < STEP, "a clean error, not a hang"
    finally:
        conn.close()
    b2.proc.kill()

    # upload: a 12 MiB body trickles in; B2 (restarted at the same address) dies half-way
    proc, m = start(b2.path)
    net.b2 = b2 = Daemon(b2.path, proc, m.group(1), m.group(2), m.group(3))
    try:
        result: dict[str, Any] = {}

        def trickle() -> Iterator[bytes]:
            for _ in range(48):
                yield bytes(256 * 1024)
                time.sleep(0.05)

        def upload() -> None:
            t = time.monotonic()
            req = urllib.request.Request(
                via(net.a, b2.peer_id, "/slow-upload"),
                data=trickle(),
                headers={"Content-Length": str(12 << 20)},
                method="POST",
            )
            try:
                with urllib.request.urlopen(req, timeout=STEP) as r:
                    result["status"] = r.status
            except urllib.error.HTTPError as e:
                with e:
                    result.update(
                        status=e.code, trailer=trailer({k.lower(): v for k, v in e.headers.items()})
                    )
            result["seconds"] = time.monotonic() - t

        uploader = threading.Thread(target=upload)
        uploader.start()
        deadline = time.monotonic() + STEP
        while time.monotonic() < deadline:
            with net.target.lock:
                if net.target.upload_progress >= 1 << 20:
                    break
            time.sleep(0.02)
        b2.proc.signal(signal.SIGKILL)
        uploader.join(STEP * 2)
        assert not uploader.is_alive(), "the caller got an answer, not a hang"
        assert result["status"] == 502, result
        assert "Bad Gateway" in result["trailer"], result
    finally:
        b2.proc.kill()

    # B2 back at the same address: A redials it and the node serves as before
    proc, m = start(b2.path)
    net.b2 = Daemon(b2.path, proc, m.group(1), m.group(2), m.group(3))
    status, _h, body = post(via(net.a, net.b2.peer_id, "/after-restart"), b"x")
    assert status == 200 and json.loads(body)["source"] == net.a.peer_id
    assert_serving(net)


# ---- the commands ---------------------------------------------------------------------------------------
def test_daemon_exits_cleanly_on_signals_and_keeps_its_identity(tmp_path: Path) -> None:
    init(tmp_path / "n")
    for sig in (signal.SIGTERM, signal.SIGINT):
        with running(nabu("daemon", "-IPFS_PATH", str(tmp_path / "n"))) as proc:
            m = proc.wait_for(START, timeout=STEP * 2)
            status, _h, body = post(f"{m.group(3)}/api/v0/id")
            assert status == 200 and json.loads(body)["ID"] == m.group(1)
            proc.signal(sig)
            assert proc.wait(STEP) == 0
            assert f"received {signal.Signals(sig).name}, shutting down" in proc.output()
    assert (tmp_path / "n" / "address-book.sqlite").exists() and (tmp_path / "n" / "blocks").is_dir()
    assert (tmp_path / "n" / "nabu.log").exists()


def test_daemon_creates_a_default_config_and_takes_runtime_overrides(tmp_path: Path) -> None:
    api = free_port()
    argv = nabu(
        "daemon",
        "-IPFS_PATH",
        str(tmp_path / "fresh"),
        "-Bootstrap",
        "",
        "-Addresses.Swarm",
        "/ip4/127.0.0.1/tcp/0",
        "-Addresses.API",
        f"/ip4/127.0.0.1/tcp/{api}",
        "-Datastore.Type",
        "rocksdict",
    )
    with running(argv) as proc:
        m = proc.wait_for(START, timeout=STEP * 2)
        assert m.group(3) == f"http://127.0.0.1:{api}"
        assert "created a default config" in proc.output()
        proc.signal(signal.SIGTERM)
        assert proc.wait(STEP) == 0
    doc = json.loads((tmp_path / "fresh" / "config").read_text())
    assert doc["Addresses"]["API"] == "/ip4/127.0.0.1/tcp/5001", "runtime overrides are not saved"
    assert doc["Datastore"] == {"Type": "hybrid"}


def test_malformed_config_and_arguments_are_clear_errors(tmp_path: Path) -> None:
    path = tmp_path / "n"
    init(path)
    r = run_cli(nabu("init", "-IPFS_PATH", str(path)))
    assert r.returncode == 2 and "already exists" in r.stderr
    cases = [
        (["daemon", "-IPFS_PATH", str(path), "-Addresses.API", "garbage"], "Addresses.API"),
        (
            ["daemon", "-IPFS_PATH", str(path), "-Addresses.Swarm", "/ip4/1.2.3.4/tcp/notaport"],
            "Addresses.Swarm[0]",
        ),
        (
            ["daemon", "-IPFS_PATH", str(path), "-Adresses.API", "/ip4/127.0.0.1/tcp/1"],
            "unknown argument -Adresses.API",
        ),
        (["daemon", "-IPFS_PATH", str(path), "stray"], "expected -Key value"),
        (["frobnicate"], "unknown command"),
        (
            ["init", "-IPFS_PATH", str(tmp_path / "m"), "-Bootstrap", "/ip4/1.2.3.4/tcp/1/p2p/notapeer"],
            "Bootstrap[0]",
        ),
    ]
    for args, message in cases:
        r = run_cli(nabu(*args))
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert message in r.stderr, (args, r.stderr)
    (path / "config").write_text("{ not json")
    r = run_cli(nabu("daemon", "-IPFS_PATH", str(path)))
    assert r.returncode == 2 and "not valid JSON" in r.stderr
    # a port in use is a start failure (exit 1), with the reason
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        init(tmp_path / "p")
        r = run_cli(
            nabu("daemon", "-IPFS_PATH", str(tmp_path / "p"), "-Addresses.API", f"/ip4/127.0.0.1/tcp/{port}")
        )
        assert r.returncode == 1 and "cannot start" in r.stderr, r.stderr
