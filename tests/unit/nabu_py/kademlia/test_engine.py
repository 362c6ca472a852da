"""The sans-IO engine: server behaviour per request type, table feeding, queries end to end, timers."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from nabu_py.errors import DecodeError
from nabu_py.protocols.kademlia.engine import (
    KademliaConfig,
    KademliaEngine,
    Penalise,
    PutResult,
    QueryFinished,
    QueryKind,
    Reply,
    SendRequest,
)
from nabu_py.protocols.kademlia.errors import InvalidRecord, QueryLimitReached
from nabu_py.protocols.kademlia.keys import kad_key
from nabu_py.protocols.kademlia.messages import Message, MessageType, Peer, Record
from nabu_py.protocols.kademlia.query import ValueResult
from tests.helpers.kad import SeqValidator, TinyNet, make_value, peer_id

ME = peer_id(0)
KEY = b"/test/alice"
MH = b"\x12\x20" + bytes(range(32))


def engine(**cfg: object) -> KademliaEngine:
    config = KademliaConfig(**cfg)  # type: ignore[arg-type]
    return KademliaEngine(
        ME, (b"my-addr",), config=config, validators={b"test": SeqValidator()}, rng=random.Random(1)
    )


def replies(actions: Sequence[object]) -> list[Message]:
    return [a.message for a in actions if isinstance(a, Reply)]


def penalties(actions: Sequence[object]) -> list[Penalise]:
    return [a for a in actions if isinstance(a, Penalise)]


def filled(n: int = 100) -> KademliaEngine:
    e = engine()
    for i in range(1, n + 1):
        e.add_peer(peer_id(i), (b"a%d" % i,), 0.0, server=True)
    return e


# -- FIND_NODE / PING / garbage ---------------------------------------------------------------


def test_find_node_for_our_own_id_returns_only_ourselves() -> None:
    e = filled()
    [r] = replies(e.handle_request(peer_id(1), Message(MessageType.FIND_NODE, key=ME).encode(), 1.0))
    assert r.type == MessageType.FIND_NODE and r.key == ME
    assert r.closer_peers == (Peer(ME, (b"my-addr",)),)


def test_find_node_returns_k_closest_without_the_requester() -> None:
    e = filled()
    target = peer_id(5000)
    known = [p.id for p in e.table]
    assert len(known) < 100  # full buckets kept only k each
    requester = min(known, key=lambda p: kad_key(p) ^ kad_key(target))
    [r] = replies(e.handle_request(requester, Message(MessageType.FIND_NODE, key=target), 1.0))
    want = sorted((p for p in known if p != requester), key=lambda p: kad_key(p) ^ kad_key(target))[:20]
    assert [p.id for p in r.closer_peers] == want
    assert all(p.addrs for p in r.closer_peers)


def test_remote_garbage_never_raises_and_is_penalised() -> None:
    e = filled(10)
    for junk in (b"\x0a\xff", b"\x08", b"\xff" * 20, b"\x1a\x03\x0a\x05a"):
        acts = e.handle_request(peer_id(1), junk, 1.0)
        assert replies(acts) == [] and len(penalties(acts)) == 1
    acts = e.handle_request(peer_id(1), Message(42, key=b"x"), 1.0)
    assert replies(acts) == [] and "unknown message type" in penalties(acts)[0].reason
    for t in (MessageType.FIND_NODE, MessageType.GET_VALUE, MessageType.GET_PROVIDERS):
        acts = e.handle_request(peer_id(1), Message(t), 1.0)
        assert replies(acts) == [] and penalties(acts)


def test_ping_is_answered() -> None:
    assert replies(engine().handle_request(peer_id(1), Message(MessageType.PING), 0.0)) == [
        Message(MessageType.PING)
    ]


# -- table feeding ----------------------------------------------------------------------------


def test_only_servers_enter_the_table() -> None:
    e = engine()
    client, server = peer_id(1), peer_id(2)
    e.handle_request(client, Message(MessageType.PING), 0.0, sender_is_server=False)
    e.handle_request(server, Message(MessageType.PING), 0.0, sender_addrs=(b"s",), sender_is_server=True)
    e.handle_request(ME, Message(MessageType.PING), 0.0, sender_is_server=True)
    assert client not in e.table and ME not in e.table
    assert e.table.get(server) == Peer(server, (b"s",))
    e.add_peer(server, (b"s",), 1.0, server=False)  # identify says it switched to client mode
    assert server not in e.table and len(e.table) == 0


def test_full_bucket_probes_stale_entry_and_evicts_it_when_the_probe_fails() -> None:
    e = engine(k=2, liveness_interval=10.0, request_timeout=5.0)
    same = [peer_id(i) for i in range(1, 200) if e.table.bucket_index(peer_id(i)) == 0][:3]
    e.add_peer(same[0], (b"0",), 0.0, server=True)
    e.add_peer(same[1], (b"1",), 1.0, server=True)
    [probe] = e.add_peer(same[2], (b"2",), 50.0, server=True)
    assert isinstance(probe, SendRequest)
    assert probe.peer.id == same[0] and probe.message == Message(MessageType.FIND_NODE, key=same[0])
    assert e.next_deadline() == 55.0
    e.on_timer(55.0)  # no reply in time
    assert same[0] not in e.table and same[2] in e.table


def test_probe_answered_keeps_the_entry() -> None:
    e = engine(k=2, liveness_interval=10.0)
    same = [peer_id(i) for i in range(1, 200) if e.table.bucket_index(peer_id(i)) == 0][:3]
    e.add_peer(same[0], (), 0.0, server=True)
    e.add_peer(same[1], (), 1.0, server=True)
    [probe] = e.add_peer(same[2], (), 50.0, server=True)
    assert isinstance(probe, SendRequest)
    e.on_response(probe.query_id, same[0], Message(MessageType.FIND_NODE, key=same[0]), 51.0)
    assert same[0] in e.table and same[2] not in e.table


# -- values -----------------------------------------------------------------------------------


def put(e: KademliaEngine, seq: int, now: float = 1.0, sender: bytes = peer_id(7)) -> list[object]:
    v = make_value(KEY, seq)
    return list(e.handle_request(sender, Message(MessageType.PUT_VALUE, key=KEY, record=Record(KEY, v)), now))


def test_put_value_stores_and_echoes() -> None:
    e = engine()
    [r] = replies(put(e, 3))
    assert r.type == MessageType.PUT_VALUE and r.record == Record(KEY, make_value(KEY, 3))
    [g] = replies(e.handle_request(peer_id(8), Message(MessageType.GET_VALUE, key=KEY), 2.0))
    assert g.record == Record(KEY, make_value(KEY, 3))


def test_put_value_of_an_older_record_gets_a_reply_with_the_newer_one() -> None:
    e = engine()
    put(e, 5)
    [r] = replies(put(e, 4))
    assert r.record == Record(KEY, make_value(KEY, 5))
    [r] = replies(put(e, 5))  # same record: accepted again
    assert r.record == Record(KEY, make_value(KEY, 5))
    [r] = replies(put(e, 6))
    assert r.record == Record(KEY, make_value(KEY, 6))
    assert e.local_record(KEY, 2.0) is not None


def test_put_value_rejections() -> None:
    e = engine(max_record_value_size=100)
    bad_sig = Message(MessageType.PUT_VALUE, key=KEY, record=Record(KEY, b"x" * 12))
    wrong_key = Message(MessageType.PUT_VALUE, key=KEY, record=Record(b"/test/bob", make_value(KEY, 1)))
    no_record = Message(MessageType.PUT_VALUE, key=KEY)
    huge = Message(MessageType.PUT_VALUE, key=KEY, record=Record(KEY, b"x" * 101))
    for msg in (bad_sig, wrong_key, no_record, huge):
        acts = e.handle_request(peer_id(7), msg, 1.0)
        assert replies(acts) == [] and len(penalties(acts)) == 1
    other_ns = Message(MessageType.PUT_VALUE, key=b"/pk/x", record=Record(b"/pk/x", b"v"))
    assert e.handle_request(peer_id(7), other_ns, 1.0) == []  # unknown namespace: no reply, no penalty
    assert e.local_record(KEY, 1.0) is None


def test_a_validator_that_fails_to_parse_a_value_causes_a_penalty_not_a_crash() -> None:
    class Parsing(SeqValidator):
        def validate(self, key: bytes, value: bytes, now: float) -> None:
            raise DecodeError("not a protobuf")

    e = KademliaEngine(ME, config=KademliaConfig(), validators={b"test": Parsing()})
    acts = put(e, 1)
    assert replies(acts) == [] and len(penalties(acts)) == 1


def test_learned_peers_enter_the_table_normalised() -> None:
    e = engine(max_addrs_per_peer=4)
    e.add_peer(peer_id(1), (b"a",), 0.0, server=True)
    qid, acts = e.find_closest_peers(b"t", 0.0)
    [send] = [a for a in acts if isinstance(a, SendRequest)]
    loud = Peer(peer_id(2), tuple(b"addr%d" % i for i in range(50)), 1)
    e.on_response(qid, peer_id(1), Message(MessageType.FIND_NODE, key=b"t", closer_peers=(loud,)), 0.1)
    later = [a for a in e.on_response(qid, peer_id(2), Message(MessageType.FIND_NODE, key=b"t"), 0.2)]
    assert any(isinstance(a, QueryFinished) for a in later)
    assert e.table.get(peer_id(2)) == Peer(peer_id(2), loud.addrs[:4])
    assert send.peer.id == peer_id(1)


def test_address_filter_applies_to_everything_handed_out() -> None:
    e = engine(address_filter=lambda a: not a.startswith(b"private"))
    e.add_peer(peer_id(1), (b"private-1", b"public-1"), 0.0, server=True)
    e.handle_request(
        peer_id(2),
        Message(MessageType.PING),
        0.0,
        sender_addrs=(b"private-2", b"public-2"),
        sender_is_server=True,
    )
    qid, acts = e.find_closest_peers(b"t", 0.0)
    learned = Peer(peer_id(3), (b"private-3", b"public-3"))
    for a in acts:
        if isinstance(a, SendRequest):
            e.on_response(
                qid, a.peer.id, Message(MessageType.FIND_NODE, key=b"t", closer_peers=(learned,)), 0.1
            )
    e.on_response(qid, peer_id(3), Message(MessageType.FIND_NODE, key=b"t"), 0.2)
    assert add_provider(e, peer_id(4), peer_id(4), 0.3) == []
    [r] = replies(e.handle_request(peer_id(9), Message(MessageType.GET_PROVIDERS, key=MH), 1.0))
    everything = [a for p in (*r.closer_peers, *r.provider_peers) for a in p.addrs]
    assert {p.id for p in r.closer_peers} == {peer_id(1), peer_id(2), peer_id(3)}
    assert everything and not [a for a in everything if a.startswith(b"private")]
    assert r.provider_peers == (Peer(peer_id(4), (b"seen-addr",)),)


def test_get_value_replies_with_closer_peers_and_expired_records_disappear() -> None:
    e = filled(30)
    put(e, 1, now=0.0)
    [g] = replies(e.handle_request(peer_id(1), Message(MessageType.GET_VALUE, key=KEY), 10.0))
    assert g.record is not None and len(g.closer_peers) == 20
    later = e.config.record_ttl + 1.0
    [g] = replies(e.handle_request(peer_id(1), Message(MessageType.GET_VALUE, key=KEY), later))
    assert g.record is None and len(g.closer_peers) == 20
    e.on_timer(e.config.purge_interval or 0.0)
    e.on_timer(later + (e.config.purge_interval or 0.0))
    assert len(e.records) == 0


def test_records_that_stopped_validating_are_dropped_not_served() -> None:
    # An IPNS record expires by its own validity long before the store's 36 h: serving it would make
    # every requester reject (and penalise) us, and a local copy must not satisfy a quorum.
    from nabu_py.p2p import HostIdentity
    from nabu_py.protocols.ipns import IpnsValidator, create_record, routing_key

    ident = HostIdentity.generate(b"\x05" * 32)
    key = routing_key(ident.peer_id)
    e = KademliaEngine(ME, config=KademliaConfig(), validators={b"ipns": IpnsValidator()})
    for i in range(1, 6):
        e.add_peer(peer_id(i), (b"a%d" % i,), 0.0, server=True)
    t0 = 1_800_000_000.0
    value = create_record(ident, b"/ipfs/x", 1, expires_at=t0 + 60)
    put_msg = Message(MessageType.PUT_VALUE, key=key, record=Record(key, value))
    [ack] = replies(e.handle_request(peer_id(1), put_msg, t0))
    assert ack.record is not None and ack.record.value == value
    [g] = replies(e.handle_request(peer_id(2), Message(MessageType.GET_VALUE, key=key), t0 + 30))
    assert g.record is not None
    assert e.local_record(key, t0 + 30) is not None
    [g] = replies(e.handle_request(peer_id(2), Message(MessageType.GET_VALUE, key=key), t0 + 61))
    assert g.record is None and len(g.closer_peers) == 4
    assert len(e.records) == 0
    _, actions = e.get_value(key, t0 + 61)
    assert any(isinstance(a, SendRequest) for a in actions)  # no stale local answer


# -- providers --------------------------------------------------------------------------------


def add_provider(
    e: KademliaEngine, sender: bytes, provider: bytes, now: float, key: bytes = MH
) -> list[object]:
    msg = Message(MessageType.ADD_PROVIDER, key=key, provider_peers=(Peer(provider, ()),))
    return list(e.handle_request(sender, msg.encode(), now, sender_addrs=(b"seen-addr",)))


def test_add_provider_only_for_the_sender_and_get_providers() -> None:
    e = filled(30)
    assert add_provider(e, peer_id(1), peer_id(1), 0.0) == []
    acts = add_provider(e, peer_id(2), peer_id(3), 0.0)
    assert len(penalties(acts)) == 1
    acts = add_provider(e, peer_id(2), peer_id(2), 0.0, key=b"not a multihash")
    assert len(penalties(acts)) == 1
    [r] = replies(e.handle_request(peer_id(9), Message(MessageType.GET_PROVIDERS, key=MH), 1.0))
    assert r.provider_peers == (Peer(peer_id(1), (b"seen-addr",)),)
    assert len(r.closer_peers) == 20
    later = e.config.provider_ttl + 1.0
    [r] = replies(e.handle_request(peer_id(9), Message(MessageType.GET_PROVIDERS, key=MH), later))
    assert r.provider_peers == ()


def test_add_provider_flood_is_bounded() -> None:
    e = engine(add_provider_rate=1.0, add_provider_burst=10)
    flooder = peer_id(66)
    penalised = 0
    for i in range(1000):
        key = b"\x12\x20" + i.to_bytes(32, "big")
        penalised += len(penalties(add_provider(e, flooder, flooder, i * 0.01, key=key)))
    stored = 1000 - penalised
    # burst of 10 plus 1/s over the ~10 s of the flood
    assert 10 <= stored <= 21
    assert len(e.providers) == stored
    # other peers are not affected by the flooder's budget
    assert add_provider(e, peer_id(67), peer_id(67), 10.0) == []


def test_add_provider_limiter_and_store_are_bounded() -> None:
    e = engine(rate_limited_peers=5)
    for i in range(100):
        add_provider(e, peer_id(100 + i), peer_id(100 + i), 0.0)
    assert len(e._limiter._buckets) == 5
    assert len(e.providers) == 64  # DEFAULT_MAX_PROVIDERS_PER_KEY


# -- queries end to end -----------------------------------------------------------------------


def network(n: int, **cfg: object) -> TinyNet:
    config = KademliaConfig(**cfg)  # type: ignore[arg-type]
    ids = [peer_id(i) for i in range(n)]
    engines = {
        pid: KademliaEngine(
            pid, (b"addr%d" % i,), config=config, validators={b"test": SeqValidator()}, rng=random.Random(i)
        )
        for i, pid in enumerate(ids)
    }
    rng = random.Random(5)
    for pid, eng in engines.items():
        for other in rng.sample(ids, 8):
            if other != pid:
                eng.add_peer(other, (b"x",), 0.0, server=True)
    net = TinyNet(engines)
    for pid, eng in engines.items():
        net.run(pid, eng.bootstrap(0.0, refresh_buckets=False))
    return net


def finished(net: TinyNet, origin: bytes, qid: int) -> QueryFinished:
    return net.finished[(origin, qid)]


def test_put_then_get_value_across_the_network() -> None:
    net = network(60)
    a, b = peer_id(3), peer_id(40)
    qid, acts = net.engines[a].put_value(KEY, make_value(KEY, 7), 1.0)
    net.run(a, acts)
    res = finished(net, a, qid)
    assert res.kind == QueryKind.PUT_VALUE
    assert isinstance(res.result, PutResult) and len(res.result.succeeded) == 20
    qid, acts = net.engines[b].get_value(KEY, 2.0, quorum=3)
    net.run(b, acts)
    got = finished(net, b, qid).result
    assert isinstance(got, ValueResult)
    assert got.value == make_value(KEY, 7) and got.answers >= 3


def test_get_value_corrects_outdated_peers() -> None:
    net = network(40)
    a = peer_id(1)
    qid, acts = net.engines[a].put_value(KEY, make_value(KEY, 1), 1.0)
    net.run(a, acts)
    holders = [p for p, eng in net.engines.items() if eng.local_record(KEY, 1.0) is not None and p != a]
    newer = make_value(KEY, 2)
    net.engines[holders[0]].handle_request(
        peer_id(2), Message(MessageType.PUT_VALUE, key=KEY, record=Record(KEY, newer)), 1.0
    )
    b = next(p for p in net.engines if p not in holders and p != a)
    qid, acts = net.engines[b].get_value(KEY, 2.0, quorum=30)
    net.run(b, acts)
    got = finished(net, b, qid).result
    assert isinstance(got, ValueResult) and got.value == newer
    stale = [
        p for p in holders if (r := net.engines[p].local_record(KEY, 3.0)) is not None and r.value != newer
    ]
    assert stale == []  # every peer that answered with the old record got the new one


def test_local_record_satisfies_quorum_one_without_network() -> None:
    net = network(10)
    a = peer_id(1)
    net.run(a, net.engines[a].put_value(KEY, make_value(KEY, 1), 1.0)[1])
    sent = net.sent
    _, acts = net.engines[a].get_value(KEY, 2.0)
    assert [type(x) for x in acts] == [QueryFinished]
    assert net.sent == sent


def test_provide_then_find_providers_and_find_peer() -> None:
    net = network(60)
    a, b = peer_id(10), peer_id(50)
    net.run(a, net.engines[a].provide(MH, 1.0)[1])
    qid, acts = net.engines[b].get_providers(MH, 2.0, count=1)
    net.run(b, acts)
    provs = finished(net, b, qid).result
    assert provs == [Peer(a, (b"addr10",))]
    qid, acts = net.engines[b].find_peer(peer_id(33), 3.0)
    net.run(b, acts)
    found = finished(net, b, qid).result
    assert isinstance(found, list) and found[0].id == peer_id(33)


def test_dead_peers_time_out_and_leave_the_table() -> None:
    net = network(40, request_timeout=2.0, max_failures=1)
    a = peer_id(0)
    dead = {p.id for p in net.engines[a].table.closest(kad_key(b"zz"), 5)}
    net.dead |= dead
    qid, acts = net.engines[a].find_closest_peers(b"zz", 10.0)
    net.run(a, acts)
    for _ in range(20):
        if (a, qid) in net.finished:
            break
        net.advance(2.0)
    res = finished(net, a, qid)
    assert isinstance(res.result, list) and not {p.id for p in res.result} & dead
    assert not any(d in net.engines[a].table for d in dead)
    assert res.lookup.iter.timeouts >= 1


def test_bad_responses_are_penalised() -> None:
    e = filled(30)
    qid, acts = e.find_closest_peers(b"t", 0.0)
    sends = [x for x in acts if isinstance(x, SendRequest)]
    assert len(sends) == 3
    out = e.on_response(qid, sends[0].peer.id, b"\xff\xff", 0.1)
    assert len(penalties(out)) == 1
    out = e.on_response(qid, sends[1].peer.id, Message(MessageType.PING), 0.2)
    assert len(penalties(out)) == 1
    out = e.on_request_failed(qid, sends[2].peer.id, 0.3)
    assert sum(isinstance(x, SendRequest) for x in out) == 1
    assert e.on_response(999, peer_id(1), Message(MessageType.FIND_NODE), 0.4) == []


def test_local_misuse_and_limits() -> None:
    e = engine(max_queries=2)
    with pytest.raises(ValueError):
        e.get_value(b"/unknown/x", 0.0)
    with pytest.raises(InvalidRecord):
        e.put_value(KEY, b"not valid", 0.0)
    e.add_peer(peer_id(1), (), 0.0, server=True)
    e.find_closest_peers(b"a", 0.0)
    qid, _ = e.find_closest_peers(b"b", 0.0)
    with pytest.raises(QueryLimitReached):
        e.find_closest_peers(b"c", 0.0)
    [fin] = e.cancel(qid, 0.1)
    assert isinstance(fin, QueryFinished) and fin.query_id == qid
    e.find_closest_peers(b"c", 0.2)
    with pytest.raises(ValueError):
        KademliaEngine(b"")


def test_publishing_an_older_record_keeps_the_better_one_locally() -> None:
    e = engine()
    e.put_value(KEY, make_value(KEY, 5), 0.0)
    e.put_value(KEY, make_value(KEY, 3), 1.0)
    rec = e.local_record(KEY, 2.0)
    assert rec is not None and rec.value == make_value(KEY, 5)
    e.put_value(KEY, make_value(KEY, 6), 3.0)
    rec = e.local_record(KEY, 4.0)
    assert rec is not None and rec.value == make_value(KEY, 6)


def test_internal_lookups_are_bounded() -> None:
    e = engine(refresh_interval=1.0)
    for i in range(1, 300):
        e.add_peer(peer_id(i), (), 0.0, server=True)
    for t in range(1, 20):
        e.on_timer(float(t))  # nobody answers; refreshes pile up until the bound
    assert e.running_queries <= 64


def test_periodic_refresh_starts_lookups() -> None:
    e = engine(refresh_interval=300.0)
    for i in range(1, 60):
        e.add_peer(peer_id(i), (), 0.0, server=True)
    assert e.next_deadline() == 300.0
    assert e.on_timer(100.0) == []
    acts = e.on_timer(300.0)
    assert sum(isinstance(x, SendRequest) for x in acts) >= 3
    assert e.running_queries >= 2
    assert e.next_deadline() is not None
