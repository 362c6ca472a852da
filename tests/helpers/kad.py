"""Test doubles for the Kademlia core: a deterministic record validator and a tiny synchronous network.

`SeqValidator` stands in for the IPNS validator (which needs Ed25519 from the crypto package): a value
is `seq (8 bytes, big endian) || tag`, where tag = sha256(key || seq)[:4]; anything else is invalid,
and the highest sequence number wins.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from nabu_py.protocols.kademlia.engine import Action, KademliaEngine, QueryFinished, Reply, SendRequest
from nabu_py.protocols.kademlia.errors import InvalidRecord

NAMESPACE = b"test"


def make_value(key: bytes, seq: int) -> bytes:
    """A value `SeqValidator` accepts for `key` with sequence number `seq`."""
    s = seq.to_bytes(8, "big")
    return s + hashlib.sha256(key + s).digest()[:4]


class SeqValidator:
    """Deterministic validator for the `/test/` namespace (see module docstring)."""

    def validate(self, key: bytes, value: bytes, now: float) -> None:
        if len(value) != 12 or hashlib.sha256(key + value[:8]).digest()[:4] != value[8:]:
            raise InvalidRecord("bad test record")

    def select(self, key: bytes, values: Sequence[bytes]) -> int:
        best = 0
        for i, v in enumerate(values):
            if v[:8] > values[best][:8]:
                best = i
        return best


def peer_id(n: int) -> bytes:
    """A deterministic Ed25519-style identity peer id."""
    return b"\x00\x24\x08\x01\x12\x20" + hashlib.sha256(b"peer%d" % n).digest()


class TinyNet:
    """Synchronous network of engines with zero latency: requests are answered immediately.

    `dead` peers never answer; their requests stay pending until the engines' own deadlines expire
    through `advance`. Used to test engine-level operations end to end without the simulator.
    """

    def __init__(self, engines: dict[bytes, KademliaEngine]) -> None:
        self.engines = engines
        self.dead: set[bytes] = set()
        self.now = 0.0
        self.finished: dict[tuple[bytes, int], QueryFinished] = {}
        self.sent = 0

    def run(self, origin: bytes, actions: list[Action]) -> None:
        queue: list[tuple[bytes, Action]] = [(origin, a) for a in actions]
        while queue:
            src, act = queue.pop(0)
            if isinstance(act, QueryFinished):
                self.finished[(src, act.query_id)] = act
            elif isinstance(act, SendRequest):
                self.sent += 1
                dst = act.peer.id
                if dst in self.dead or dst not in self.engines:
                    continue
                replies = self.engines[dst].handle_request(
                    src, act.message.encode(), self.now, sender_is_server=True
                )
                for r in replies:
                    if isinstance(r, Reply):
                        if act.expect_reply:
                            out = self.engines[src].on_response(
                                act.query_id, dst, r.message.encode(), self.now
                            )
                            queue.extend((src, a) for a in out)
                    else:
                        queue.append((dst, r))

    def advance(self, dt: float) -> None:
        self.now += dt
        for pid, eng in self.engines.items():
            if pid not in self.dead:
                self.run(pid, eng.on_timer(self.now))
