"""One-stream throughput and request/response latency of nabu_py.p2p against a plain trio TLS 1.3 stream.

    .venv/bin/python benchmarks/p2p_stream.py [--mib 256] [--chunk-kib 1024] [--rounds 3] [--rr 2000]
                                               [--sections baseline,tls,noise]

Every measurement runs between two OS processes on loopback (a server and a client started from this
script). Each round measures every stack once, in turn, so the machine's load hits all of them alike;
the report gives medians over the rounds and ratios against the trio TLS baseline *measured in the same
run* (absolute numbers on a shared 2-core VM swing by 30-50 %, ratios much less).

Measured per stack:
* bulk: client writes `--mib` MiB in `--chunk-kib` writes on one stream, half-closes, waits for the
  server's 8-byte byte count (server reads until EOF with 1 MiB reads) -> MB/s;
* rr: `--rr` round trips of a 1 KiB message echoed by the server on one stream -> median microseconds;
* new stream + rr (p2p stacks): open a stream (multistream-select included), one 1 KiB round trip,
  close -> median microseconds (the baseline's counterpart would be a new TCP+TLS connection).

Sections: `SECTIONS` maps a name to a `Section` (how to serve and how to measure); `worker` is the
sub-command the processes run. `stock` (stock py-libp2p 0.8.1 TLS + yamux, for comparison) is opt-in:
`--sections baseline,stock,tls`.

Every worker process first calls `nabu_py.tuning.tune_allocator()` (what `nabu daemon` does: glibc keeps
MiB-sized buffers on the heap instead of mmapping each one); `--malloc-default` measures without it.

`proxy` measures HTTP over p2p (`/http`, spec/nabu.md §4) end to end: the server process runs node B
(`NabuNode`, TLS + yamux) whose proxy target is a small HTTP server in the same process (as the Peergos
server is, embedding its node); the client process runs node A with its HTTP API (hypercorn) and a plain
HTTP/1.1 client on a loopback socket that POSTs `--mib` MiB in `--chunk-kib` writes to A's
`/p2p/<B>/http/sink` (the target hashes nothing, it counts bytes and answers the count) -> MB/s up; then
POSTs to `/p2p/<B>/http/source?n=<bytes>` and reads a `--mib` MiB response -> MB/s down. The report
compares both with the raw one-stream `tls` figure of the same run (goal: >= 0.5x).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import ssl
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MSG = 1024
SINK = "/bench/sink/1.0.0"
RR = "/bench/rr/1.0.0"
SERVER_START_TIMEOUT = 60.0
CLIENT_TIMEOUT = 900.0
MALLOC_ENV = "NABU_BENCH_MALLOC"


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


# ---- plain trio TLS 1.3 (baseline) ---------------------------------------------------------------------
def _tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    with tempfile.TemporaryDirectory() as d:
        cert_path, key_path = Path(d) / "c.pem", Path(d) / "k.pem"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.minimum_version = ssl.TLSVersion.TLSv1_3
        server.load_cert_chain(cert_path, key_path)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.minimum_version = ssl.TLSVersion.TLSv1_3
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    return server, client


async def _recv_exactly(stream: trio.abc.Stream, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        data = await stream.receive_some(n - len(buf))
        if not data:
            raise EOFError("peer closed")
        buf += data
    return bytes(buf)


async def _baseline_server(_args: list[str]) -> None:
    server_ctx, _ = _tls_contexts()

    async def handle(tcp: trio.SocketStream) -> None:
        stream = trio.SSLStream(tcp, server_ctx, server_side=True)
        try:
            await stream.do_handshake()
            mode = await _recv_exactly(stream, 1)
            if mode == b"B":
                total = struct.unpack(">Q", await _recv_exactly(stream, 8))[0]
                n = 0
                while n < total:
                    data = await stream.receive_some(1 << 20)
                    if not data:
                        break
                    n += len(data)
                await stream.send_all(struct.pack(">Q", n))
            else:
                while True:
                    await stream.send_all(await _recv_exactly(stream, MSG))
        except (EOFError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await tcp.aclose()

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    print("READY", listeners[0].socket.getsockname()[1], flush=True)
    await trio.serve_listeners(handle, listeners)


async def _baseline_client(args: list[str]) -> dict[str, Any]:
    port, mib, chunk_kib, n_rr = int(args[0]), int(args[1]), int(args[2]), int(args[3])
    _, client_ctx = _tls_contexts()

    async def connect() -> trio.SSLStream[trio.SocketStream]:
        tcp = await trio.open_tcp_stream("127.0.0.1", port)
        stream = trio.SSLStream(tcp, client_ctx, server_hostname=None)
        await stream.do_handshake()
        return stream

    res: dict[str, Any] = {}
    if mib:
        stream = await connect()
        total, chunk = mib << 20, bytes(chunk_kib << 10)
        t0, c0 = time.perf_counter(), _cpu()
        await stream.send_all(b"B" + struct.pack(">Q", total))
        for _ in range(total // len(chunk)):
            await stream.send_all(chunk)
        got = struct.unpack(">Q", await _recv_exactly(stream, 8))[0]
        dt = time.perf_counter() - t0
        res.update(mbps=total / dt / 1e6, ok=got == total, client_cpu=(_cpu() - c0) / dt)
        await stream.aclose()
    if n_rr:
        stream = await connect()
        await stream.send_all(b"R")
        res["rr_us"] = await _rr_loop(stream.send_all, lambda: _recv_exactly(stream, MSG), n_rr)
        await stream.aclose()
    return res


async def _rr_loop(
    send: Callable[[bytes], Awaitable[None]], recv: Callable[[], Awaitable[bytes]], n: int
) -> float:
    msg = os.urandom(MSG)
    for _ in range(50):
        await send(msg)
        await recv()
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        await send(msg)
        await recv()
        lat.append(time.perf_counter() - t0)
    return statistics.median(lat) * 1e6


# ---- nabu_py.p2p (TLS or Noise, yamux) -----------------------------------------------------------------
async def _p2p_server(args: list[str]) -> None:
    from nabu_py.p2p import HostConfig, HostIdentity, P2PHost, P2PStream

    async def sink(stream: P2PStream) -> None:
        n = 0
        while data := await stream.read(1 << 20):
            n += len(data)
        await stream.write(struct.pack(">Q", n))

    async def rr(stream: P2PStream) -> None:
        while True:
            try:
                msg = await stream.read_exactly(MSG)
            except Exception:
                return
            await stream.write(msg)

    config = HostConfig(identity=HostIdentity.generate(), security=(args[0],))
    async with P2PHost.open(config) as host:
        host.set_stream_handler(SINK, sink)
        host.set_stream_handler(RR, rr)
        print("READY", host.addrs_with_peer_id()[0], flush=True)
        await trio.sleep_forever()


async def _p2p_client(args: list[str]) -> dict[str, Any]:
    from nabu_py.p2p import HostConfig, HostIdentity, P2PHost

    security, addr, mib, chunk_kib, n_rr = args[0], args[1], int(args[2]), int(args[3]), int(args[4])
    res: dict[str, Any] = {}
    async with P2PHost.open(HostConfig(identity=HostIdentity.generate(), security=(security,))) as host:
        peer = await host.connect(addr)
        if mib:
            total, chunk = mib << 20, bytes(chunk_kib << 10)
            stream = await host.new_stream(peer, [SINK])
            t0, c0 = time.perf_counter(), _cpu()
            for _ in range(total // len(chunk)):
                await stream.write(chunk)
            await stream.close_write()
            got = struct.unpack(">Q", await stream.read_exactly(8))[0]
            dt = time.perf_counter() - t0
            cpu = _cpu() - c0
            res.update(
                mbps=total / dt / 1e6, ok=got == total, client_cpu=cpu / dt, client_cpu_s=cpu, moved_mib=mib
            )
            await stream.close()
        if n_rr:
            stream = await host.new_stream(peer, [RR])
            res["rr_us"] = await _rr_loop(stream.write, lambda: stream.read_exactly(MSG), n_rr)
            await stream.close()
            msg = os.urandom(MSG)
            lat = []
            for _ in range(max(50, n_rr // 10)):
                t0 = time.perf_counter()
                s = await host.new_stream(peer, [RR])
                await s.write(msg)
                await s.read_exactly(MSG)
                await s.close()
                lat.append(time.perf_counter() - t0)
            res["new_stream_rr_us"] = statistics.median(lat) * 1e6
    return res


# ---- stock py-libp2p 0.8.1 (opt-in: --sections baseline,stock,tls) ------------------------------------
def _stock_host(security: str) -> Any:
    from libp2p import generate_new_ed25519_identity, new_host
    from libp2p.crypto.x25519 import create_new_key_pair
    from libp2p.custom_types import TProtocol
    from libp2p.network.config import ConnectionConfig
    from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_ID
    from libp2p.security.noise.transport import Transport as NoiseTransport
    from libp2p.security.tls.transport import PROTOCOL_ID as TLS_ID
    from libp2p.security.tls.transport import TLSTransport
    from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_ID
    from libp2p.stream_muxer.yamux.yamux import Yamux

    kp = generate_new_ed25519_identity()
    sec = (
        {TLS_ID: TLSTransport(kp)}
        if security == "tls"
        else {NOISE_ID: NoiseTransport(kp, noise_privkey=create_new_key_pair().private_key)}
    )
    return new_host(
        key_pair=kp,
        sec_opt=sec,
        muxer_opt={TProtocol(YAMUX_ID): Yamux},
        connection_config=ConnectionConfig(max_connections_per_peer=1),
    )


async def _stock_read_exactly(stream: Any, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        buf += await stream.read(n - len(buf))
    return bytes(buf)


async def _stock_server(args: list[str]) -> None:
    import multiaddr
    from libp2p.custom_types import TProtocol
    from libp2p.network.stream.exceptions import StreamEOF

    async def sink(stream: Any) -> None:
        n = 0
        try:
            while True:
                n += len(await stream.read(1 << 20))
        except StreamEOF:
            pass
        await stream.write(struct.pack(">Q", n))
        await stream.close()

    async def rr(stream: Any) -> None:
        try:
            while True:
                await stream.write(await _stock_read_exactly(stream, MSG))
        except Exception:
            await stream.close()

    host = _stock_host(args[0])
    async with host.run([multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        host.set_stream_handler(TProtocol(SINK), sink)
        host.set_stream_handler(TProtocol(RR), rr)
        print("READY", f"{host.get_addrs()[0]}", flush=True)
        try:
            await trio.sleep_forever()
        finally:
            await host.close()


async def _stock_client(args: list[str]) -> dict[str, Any]:
    import multiaddr
    from libp2p.custom_types import TProtocol
    from libp2p.peer.peerinfo import info_from_p2p_addr

    security, addr, mib, chunk_kib, n_rr = args[0], args[1], int(args[2]), int(args[3]), int(args[4])
    res: dict[str, Any] = {}
    host = _stock_host(security)
    async with host.run([multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        info = info_from_p2p_addr(multiaddr.Multiaddr(addr))
        await host.connect(info)
        if mib:
            total, chunk = mib << 20, bytes(chunk_kib << 10)
            stream = await host.new_stream(info.peer_id, [TProtocol(SINK)])
            t0, c0 = time.perf_counter(), _cpu()
            for _ in range(total // len(chunk)):
                await stream.write(chunk)
            await stream.close_write()
            got = struct.unpack(">Q", await _stock_read_exactly(stream, 8))[0]
            dt = time.perf_counter() - t0
            res.update(mbps=total / dt / 1e6, ok=got == total, client_cpu=(_cpu() - c0) / dt)
        if n_rr:
            stream = await host.new_stream(info.peer_id, [TProtocol(RR)])
            res["rr_us"] = await _rr_loop(stream.write, lambda: _stock_read_exactly(stream, MSG), n_rr)
        await host.close()
    return res


# ---- HTTP over p2p: /p2p/<B>/http/... through node A's API to node B's proxy target ---------------------
async def _proxy_target(stream: trio.SocketStream) -> None:
    """The benchmark's proxy target: `/sink` counts the request body, `/source?n=N` sends N bytes.

    Lean on purpose (the target's cost is part of the path): h11 parses the heads, bodies of known
    length move raw, one `receive_some`/`send_all` per MiB.
    """
    import h11

    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
    try:
        while True:
            ev = conn.next_event()
            if ev is h11.NEED_DATA:
                conn.receive_data(await stream.receive_some(1 << 20))
                continue
            if not isinstance(ev, h11.Request):
                return
            length = int(dict(ev.headers).get(b"content-length", b"0"))
            buffered = conn.trailing_data[0][:length]
            n = len(buffered)
            while n < length:
                data = await stream.receive_some(min(1 << 20, length - n))
                if not data:
                    return
                n += len(data)
            path, _, query = ev.target.partition(b"?")
            if path == b"/source":
                total = int(query.split(b"=", 1)[1])
                head = f"HTTP/1.1 200 OK\r\ncontent-length: {total}\r\n\r\n".encode()
                await stream.send_all(head)
                chunk = bytes(1 << 20)
                left = total
                while left:
                    part = chunk if left >= len(chunk) else chunk[:left]
                    await stream.send_all(part)
                    left -= len(part)
            else:
                await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\n" + struct.pack(">Q", n))
            return  # one request per connection (the /http serving side opens one per stream)
    except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError):
        pass
    finally:
        await stream.aclose()


async def _proxy_server(_args: list[str]) -> None:
    from functools import partial

    from nabu_py.node import NabuNode, NodeConfig
    from nabu_py.p2p import HostIdentity

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, _proxy_target, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        config = NodeConfig(
            identity=HostIdentity.generate(), security=("tls",), proxy_target=("127.0.0.1", port)
        )
        async with NabuNode.open(config) as node:
            print("READY", node.host.addrs_with_peer_id()[0], flush=True)
            await trio.sleep_forever()


async def _http_exchange(
    port: int, target: str, body_size: int, chunk: bytes, response_sink: bool
) -> tuple[int, int, float]:
    """One HTTP/1.1 POST on a fresh loopback connection: (status, response bytes or the count the
    target reported, seconds). Like the target, it parses heads with h11 and moves bodies raw."""
    import h11

    stream = await trio.open_tcp_stream("127.0.0.1", port)
    conn = h11.Connection(h11.CLIENT)
    t0 = time.perf_counter()
    head = h11.Request(
        method="POST",
        target=target,
        headers=[(b"host", b"127.0.0.1"), (b"content-length", str(body_size).encode())],
    )
    await stream.send_all(conn.send(head))
    left = body_size
    while left:
        part = chunk if left >= len(chunk) else chunk[:left]
        await stream.send_all(part)
        left -= len(part)
    while True:
        ev = conn.next_event()
        if ev is h11.NEED_DATA:
            conn.receive_data(await stream.receive_some(1 << 20))
            continue
        break
    if not isinstance(ev, h11.Response):
        raise RuntimeError(f"no response: {ev!r}")
    length = int(dict(ev.headers).get(b"content-length", b"0"))
    body = bytearray() if not response_sink else None
    buffered = conn.trailing_data[0][:length]
    received = len(buffered)
    if body is not None:
        body += buffered
    while received < length:
        data = await stream.receive_some(min(1 << 20, length - received))
        if not data:
            break
        received += len(data)
        if body is not None:
            body += data
    dt = time.perf_counter() - t0
    await stream.aclose()
    if body is not None:
        received = struct.unpack(">Q", bytes(body))[0] if len(body) == 8 else -1
    return ev.status_code, received, dt


async def _proxy_client(args: list[str]) -> dict[str, Any]:
    from nabu_py.api import serving
    from nabu_py.node import NabuNode, NodeConfig
    from nabu_py.p2p import HostIdentity

    addr, mib, chunk_kib = args[0], int(args[1]), int(args[2])
    res: dict[str, Any] = {}
    config = NodeConfig(identity=HostIdentity.generate(), security=("tls",))
    async with NabuNode.open(config) as node, serving(node.api_app(), "127.0.0.1", 0) as url:
        peer = await node.host.connect(addr)
        port = int(url.rsplit(":", 1)[1])
        base = f"/p2p/{peer.to_base58()}/http"
        chunk = bytes(chunk_kib << 10)
        total = mib << 20
        await _http_exchange(port, f"{base}/sink", 1 << 20, chunk, False)  # warm-up
        c0 = _cpu()
        status, got, dt = await _http_exchange(port, f"{base}/sink", total, chunk, False)
        c1 = _cpu()
        res.update(mbps=total / dt / 1e6, ok=status == 200 and got == total, client_cpu=(c1 - c0) / dt)
        status, got, dt = await _http_exchange(port, f"{base}/source?n={total}", 0, chunk, True)
        res.update(mbps_down=total / dt / 1e6, ok_down=status == 200 and got == total)
        res["ok"] = res["ok"] and res["ok_down"]
        res.update(client_cpu_s=_cpu() - c0, moved_mib=2 * mib + 1)
    return res


# ---- sections ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Section:
    """A stack to measure: `server_args` start its server worker, `client_args(ready, opts)` its client."""

    label: str
    server_args: list[str]
    client_args: Callable[[str, argparse.Namespace], list[str]]


SECTIONS: dict[str, Section] = {
    "baseline": Section(
        "trio TLS 1.3 (baseline)",
        ["baseline-server"],
        lambda ready, o: ["baseline-client", ready, str(o.mib), str(o.chunk_kib), str(o.rr)],
    ),
    "tls": Section(
        "nabu_py TLS + yamux",
        ["p2p-server", "tls"],
        lambda ready, o: ["p2p-client", "tls", ready, str(o.mib), str(o.chunk_kib), str(o.rr)],
    ),
    "noise": Section(
        "nabu_py Noise + yamux",
        ["p2p-server", "noise"],
        lambda ready, o: ["p2p-client", "noise", ready, str(o.mib), str(o.chunk_kib), str(o.rr)],
    ),
    "proxy": Section(
        "/http proxy via API (up)",
        ["proxy-server"],
        lambda ready, o: ["proxy-client", ready, str(o.mib), str(o.chunk_kib)],
    ),
    "stock": Section(
        "py-libp2p 0.8.1 TLS + yamux",
        ["stock-server", "tls"],
        lambda ready, o: ["stock-client", "tls", ready, str(o.mib), str(o.chunk_kib), str(o.rr)],
    ),
}
DEFAULT_SECTIONS = ("baseline", "tls", "noise", "proxy")

WORKERS: dict[str, Callable[[list[str]], Awaitable[Any]]] = {
    "stock-server": _stock_server,
    "stock-client": _stock_client,
    "baseline-server": _baseline_server,
    "baseline-client": _baseline_client,
    "p2p-server": _p2p_server,
    "p2p-client": _p2p_client,
    "proxy-server": _proxy_server,
    "proxy-client": _proxy_client,
}


def _measure(section: Section, opts: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "worker"]
    server = subprocess.Popen([*cmd, *section.server_args], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        ready = ""
        while time.monotonic() < deadline:
            line = server.stdout.readline()
            if not line:
                break
            if line.startswith("READY "):
                ready = line.split()[1]
                break
        if not ready:
            raise RuntimeError(f"{section.label}: server did not start")
        s0 = _process_cpu(server.pid)
        client = subprocess.run(
            [*cmd, *section.client_args(ready, opts)], capture_output=True, text=True, timeout=CLIENT_TIMEOUT
        )
        s1 = _process_cpu(server.pid)
        for line in client.stdout.splitlines():
            if line.startswith("RESULT "):
                result: dict[str, Any] = json.loads(line[7:])
                if s0 is not None and s1 is not None:
                    result["server_cpu_s"] = s1 - s0
                return result
        raise RuntimeError(
            f"{section.label}: client failed:\n{client.stdout[-2000:]}\n{client.stderr[-3000:]}"
        )
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _process_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) a process has used so far (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_per_gib(rows: list[dict[str, Any]]) -> float | None:
    """Median CPU seconds per GiB moved, client (measured transfers) plus server (whole client run)."""
    values = [
        (r["client_cpu_s"] + r["server_cpu_s"]) / (r["moved_mib"] / 1024)
        for r in rows
        if "client_cpu_s" in r and "server_cpu_s" in r and r.get("moved_mib")
    ]
    return statistics.median(values) if values else None


def _median(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if key in r]
    return statistics.median(values) if values else None


def main(argv: list[str]) -> int:
    if argv and argv[0] == "worker":
        if os.environ.get(MALLOC_ENV) != "default":
            from nabu_py.tuning import tune_allocator

            tune_allocator()
        result = trio.run(WORKERS[argv[1]], argv[2:])
        if result is not None:
            print("RESULT " + json.dumps(result), flush=True)
        return 0
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--chunk-kib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rr", type=int, default=2000)
    parser.add_argument("--sections", default=",".join(DEFAULT_SECTIONS), help=f"any of {sorted(SECTIONS)}")
    parser.add_argument(
        "--malloc-default",
        action="store_true",
        help="leave glibc malloc's defaults in every process (default: nabu_py.tuning.tune_allocator(), "
        "as `nabu daemon` does)",
    )
    opts = parser.parse_args(argv)
    if opts.malloc_default:
        os.environ[MALLOC_ENV] = "default"
    names = [n for n in opts.sections.split(",") if n]
    unknown = set(names) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; known: {sorted(SECTIONS)}")
    rows: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    print(
        f"{opts.mib} MiB in {opts.chunk_kib} KiB writes, {opts.rr} x 1 KiB round trips, {opts.rounds} rounds"
    )
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    for rnd in range(opts.rounds):
        for name in names:
            r = _measure(SECTIONS[name], opts)
            if opts.mib and not r.get("ok"):
                raise RuntimeError(f"{name}: byte count mismatch")
            rows[name].append(r)
            extra = f", new stream+rr {r['new_stream_rr_us']:.0f} us" if "new_stream_rr_us" in r else ""
            extra += f", down {r['mbps_down']:.1f} MB/s" if "mbps_down" in r else ""
            mbps = f"{r['mbps']:.1f} MB/s" if "mbps" in r else "-"
            rr = f"{r['rr_us']:.0f} us" if "rr_us" in r else "-"
            print(f"  round {rnd + 1} {name:9s} bulk {mbps:>11s}  rr {rr}{extra}", flush=True)
    base_mbps = _median(rows.get("baseline", []), "mbps")
    base_rr = _median(rows.get("baseline", []), "rr_us")
    print(f"\nmedians over {opts.rounds} rounds (load average now {os.getloadavg()[0]:.2f}):")
    print(f"{'stack':28s} {'MB/s':>8s} {'x base':>7s} {'rr us':>8s} {'x base':>7s} {'new stream+rr us':>17s}")
    for name in names:
        mbps, rr, ns = (_median(rows[name], k) for k in ("mbps", "rr_us", "new_stream_rr_us"))
        ratio = f"{mbps / base_mbps:.2f}" if mbps and base_mbps else "-"
        rr_ratio = f"{rr / base_rr:.2f}" if rr and base_rr else "-"
        print(
            f"{SECTIONS[name].label:28s} {mbps or 0:8.1f} {ratio:>7s} {rr or 0:8.0f} {rr_ratio:>7s} "
            f"{f'{ns:.0f}' if ns else '-':>17s}"
        )
    if "proxy" in rows and rows.get("tls"):
        # Ratios per round (the tls and proxy measurements of one round ran back to back, under the same
        # load), then the median: on a shared machine this is steadier than a ratio of medians.
        pairs = list(zip(rows["tls"], rows["proxy"], strict=True))
        up = statistics.median(p["mbps"] / t["mbps"] for t, p in pairs)
        down = statistics.median(p["mbps_down"] / t["mbps"] for t, p in pairs)
        print(
            f"\n/http proxy ({opts.mib} MiB body through A's /p2p/<B>/http/ to B's target) vs one raw TLS + "
            f"yamux stream, median of per-round ratios: up {up:.2f}x, down {down:.2f}x (goal >= 0.5x)"
        )
        # The servers' CPU is taken over a whole client run, so it only measures the bulk transfers
        # when no round-trip test runs alongside.
        raw_cpu, proxy_cpu = _cpu_per_gib(rows["tls"]), _cpu_per_gib(rows["proxy"])
        if raw_cpu and proxy_cpu and opts.rr == 0:
            print(
                f"CPU per GiB moved, both processes: raw stream {raw_cpu:.2f} s, /http proxy "
                f"{proxy_cpu:.2f} s "
                f"({raw_cpu / proxy_cpu:.2f}x the raw stream's efficiency)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
