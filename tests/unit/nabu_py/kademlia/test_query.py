"""Lookup state machines: convergence, termination under silent/garbage/far-answering peers, bounds."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from nabu_py.protocols.kademlia.keys import kad_key
from nabu_py.protocols.kademlia.messages import Message, MessageType, Peer, Record
from nabu_py.protocols.kademlia.query import (
    ClosestPeersIter,
    FindNodeLookup,
    GetProvidersLookup,
    GetValueLookup,
    Lookup,
    LookupParams,
    PeerState,
    ProvideLookup,
    PutValueLookup,
)
from tests.helpers.kad import SeqValidator, make_value, peer_id

LOCAL = peer_id(0)
UNIVERSE = [Peer(peer_id(n), (b"a%d" % n,)) for n in range(1, 401)]
BY_ID = {p.id: p for p in UNIVERSE}


def closest_in_universe(target: int, count: int, exclude: bytes | None = None) -> list[Peer]:
    return sorted((p for p in UNIVERSE if p.id != exclude), key=lambda p: kad_key(p.id) ^ target)[:count]


Responder = Callable[[Peer, Message], Message | None]


def honest(k: int = 20) -> Responder:
    def answer(peer: Peer, req: Message) -> Message | None:
        return Message(
            req.type, key=req.key, closer_peers=tuple(closest_in_universe(kad_key(req.key), k, peer.id))
        )

    return answer


def drive(
    lookup: Lookup, respond: Responder, *, now: float = 0.0, max_steps: int = 10_000
) -> tuple[int, float]:
    """Answer requests one at a time (FIFO); silent peers are left to time out. Returns (requests, time)."""
    pending: list[tuple[Peer, Message]] = []
    sent = 0
    steps = 0
    out = lookup.step(now)
    while not lookup.finished:
        steps += 1
        assert steps < max_steps, "lookup did not terminate"
        for o in out:
            sent += 1
            pending.append((o.peer, o.message))
        assert lookup.iter.in_flight <= lookup.iter.alpha or isinstance(lookup, PutValueLookup)
        answered = False
        while pending and not answered:
            peer, req = pending.pop(0)
            reply = respond(peer, req)
            if reply is not None:
                lookup.on_response(peer.id, reply, now)
                answered = True
        if not answered:
            nd = lookup.next_deadline()
            assert nd is not None, "stuck without a deadline"
            now = max(now, nd)
        out = lookup.step(now)
    return sent, now


def params(**kw: float) -> LookupParams:
    return LookupParams(LOCAL, **kw)  # type: ignore[arg-type]


def test_converges_to_the_true_k_closest() -> None:
    key = b"some key"
    seeds = UNIVERSE[:20]
    lk = FindNodeLookup(key, seeds, params())
    sent, _ = drive(lk, honest())
    assert lk.result() == closest_in_universe(kad_key(key), 20)
    assert sent < 100
    assert lk.iter.successes == sent


def test_terminates_when_every_peer_is_silent() -> None:
    lk = FindNodeLookup(b"k", UNIVERSE[:20], params(request_timeout=2.0))
    sent, now = drive(lk, lambda p, m: None)
    assert sent == 20 and lk.result() == []
    assert lk.iter.timeouts == 20
    assert now == pytest.approx(2.0 * 7)  # 20 peers, 3 at a time, 2 s each


def test_routes_around_silent_peers() -> None:
    dead = {p.id for p in UNIVERSE[::3]}
    inner = honest()

    def respond(p: Peer, m: Message) -> Message | None:
        return None if p.id in dead else inner(p, m)

    key = b"target"
    lk = FindNodeLookup(key, UNIVERSE[:20], params())
    drive(lk, respond)
    result = lk.result()
    assert len(result) == 20 and not {p.id for p in result} & dead
    # honest peers list dead ones too, so live peers beyond the overall top 20 may stay unknown;
    # every live peer of the overall top 20 must be found, and the result is sorted by distance
    top = [p for p in closest_in_universe(kad_key(key), 20) if p.id not in dead]
    assert result[: len(top)] == top
    assert result == sorted(result, key=lambda p: kad_key(p.id) ^ kad_key(key))


def test_garbage_answers_count_as_failures() -> None:
    inner = honest()
    bad = {p.id for p in UNIVERSE[1::4]}

    def respond(p: Peer, m: Message) -> Message | None:
        if p.id in bad:
            return Message(MessageType.PING)  # wrong type
        return inner(p, m)

    lk = FindNodeLookup(b"x", UNIVERSE[:20], params())
    drive(lk, respond)
    assert all(p.id not in bad for p in lk.result())
    assert lk.iter.failures > 0 and len(lk.result()) == 20
    for pid in bad:
        assert lk.iter.state(pid) in (None, PeerState.FAILED, PeerState.NOT_CONTACTED)


def test_far_peers_do_not_prolong_the_lookup() -> None:
    key = b"far"
    target = kad_key(key)
    far = sorted(UNIVERSE, key=lambda p: kad_key(p.id) ^ target)[-30:]
    seeds = closest_in_universe(target, 20)

    def respond(p: Peer, m: Message) -> Message | None:
        return Message(MessageType.FIND_NODE, key=m.key, closer_peers=tuple(far[:20]))

    lk = FindNodeLookup(key, seeds, params())
    sent, _ = drive(lk, respond)
    assert sent == 20  # only the 20 seeds: none of the far peers is ever asked
    assert lk.result() == seeds


def test_ever_closer_fake_peers_are_bounded_by_the_query_deadline() -> None:
    counter = iter(range(10**9))

    def respond(p: Peer, m: Message) -> Message | None:
        fakes = tuple(Peer(b"fake%d" % next(counter)) for _ in range(20))
        return Message(MessageType.FIND_NODE, key=m.key, closer_peers=fakes)

    lk = FindNodeLookup(b"k", UNIVERSE[:20], params(request_timeout=1.0, deadline=30.0))
    drive(lk, lambda p, m: respond(p, m) if p.id in BY_ID else None)
    assert lk.finished
    assert len(lk.iter) <= lk.iter.max_candidates + lk.iter.requests


def test_alpha_is_respected_and_configurable() -> None:
    for alpha in (1, 3, 7):
        lk = FindNodeLookup(b"a", UNIVERSE[:30], params(alpha=alpha))
        assert len(lk.step(0.0)) == alpha
        assert lk.step(0.0) == []


def test_late_reply_after_timeout_is_used_and_duplicates_ignored() -> None:
    it = ClosestPeersIter(kad_key(b"t"), UNIVERSE[:5], local_peer_id=LOCAL, k=5, alpha=1, request_timeout=1.0)
    first = it.step(0.0)[0]
    assert it.step(2.0)[0] != first  # timed out, next one asked
    assert it.state(first.id) == PeerState.FAILED
    it.on_success(first.id, UNIVERSE[5:8], 2.5)
    assert it.state(first.id) == PeerState.SUCCEEDED
    assert it.successes == 1
    it.on_success(first.id, (), 2.6)
    assert it.successes == 1
    it.on_success(b"never-asked", UNIVERSE[9:10], 2.7)
    assert it.state(b"never-asked") is None and it.state(UNIVERSE[9].id) is None


def test_ourselves_and_invalid_ids_are_never_candidates() -> None:
    it = ClosestPeersIter(0, [Peer(LOCAL), Peer(b""), Peer(b"x" * 200), UNIVERSE[0]], local_peer_id=LOCAL)
    assert len(it) == 1


def test_candidates_are_bounded() -> None:
    it = ClosestPeersIter(kad_key(b"t"), UNIVERSE, local_peer_id=LOCAL, k=5, max_candidates=50)
    assert len(it) == 50
    assert [p.id for p in it.result()] == []
    closest = closest_in_universe(kad_key(b"t"), 50)
    assert {it.peer(p.id) for p in closest} == set(closest)


def test_empty_seed_list_finishes_at_once() -> None:
    lk = FindNodeLookup(b"x", [], params())
    assert lk.step(0.0) == [] and lk.finished and lk.result() == []


def test_depths() -> None:
    key = b"depth"
    lk = FindNodeLookup(key, UNIVERSE[:3], params(k=3))
    drive(lk, honest(3))
    assert lk.iter.depth(UNIVERSE[0].id) == 0
    assert all((lk.iter.depth(p.id) or 0) >= 0 for p in lk.result())


# -- values -----------------------------------------------------------------------------------

KEY = b"/test/name"


def value_responder(values: dict[bytes, bytes], bad: dict[bytes, Record] | None = None) -> Responder:
    inner = honest()

    def respond(p: Peer, m: Message) -> Message | None:
        base = inner(p, m)
        assert base is not None
        if bad and p.id in bad:
            return Message(MessageType.GET_VALUE, key=KEY, record=bad[p.id], closer_peers=base.closer_peers)
        v = values.get(p.id)
        rec = None if v is None else Record(KEY, v)
        return Message(MessageType.GET_VALUE, key=KEY, record=rec, closer_peers=base.closer_peers)

    return respond


def test_get_value_picks_best_and_reports_outdated_peers() -> None:
    near = closest_in_universe(kad_key(KEY), 20)
    values = {near[0].id: make_value(KEY, 1), near[1].id: make_value(KEY, 5), near[2].id: make_value(KEY, 3)}
    lk = GetValueLookup(KEY, UNIVERSE[:20], params(), validator=SeqValidator(), quorum=20)
    drive(lk, value_responder(values))
    res = lk.result()
    assert res.value == make_value(KEY, 5)
    assert res.answers == 3
    assert res.best_peers == (near[1].id,)
    assert {p.id for p in res.outdated_peers} == {near[0].id, near[2].id}
    fixes = lk.corrections()
    assert {o.peer.id for o in fixes} == {near[0].id, near[2].id}
    assert all(o.message.record == Record(KEY, make_value(KEY, 5)) and not o.expect_reply for o in fixes)


def test_get_value_stops_at_quorum() -> None:
    values = {p.id: make_value(KEY, 2) for p in UNIVERSE}
    lk = GetValueLookup(KEY, UNIVERSE[:20], params(), validator=SeqValidator(), quorum=2)
    sent, _ = drive(lk, value_responder(values))
    assert lk.result().answers == 2 and len(lk.result().best_peers) == 2
    assert sent <= 4  # alpha requests, plus one sent when the first answer arrived


def test_get_value_local_record_counts_towards_quorum() -> None:
    lk = GetValueLookup(
        KEY, UNIVERSE[:20], params(), validator=SeqValidator(), quorum=2, local_value=make_value(KEY, 9)
    )
    values = {p.id: make_value(KEY, 1) for p in UNIVERSE}
    drive(lk, value_responder(values))
    res = lk.result()
    assert res.answers == 2 and res.value == make_value(KEY, 9) and len(res.outdated_peers) == 1


def test_get_value_rejects_invalid_and_mismatched_records() -> None:
    near = closest_in_universe(kad_key(KEY), 20)
    bad = {
        near[0].id: Record(KEY, b"forged value"),
        near[1].id: Record(b"/test/other", make_value(b"/test/other", 100)),
    }
    lk = GetValueLookup(KEY, UNIVERSE[:20], params(), validator=SeqValidator(), quorum=5)
    drive(lk, value_responder({near[2].id: make_value(KEY, 1)}, bad))
    res = lk.result()
    assert res.value == make_value(KEY, 1) and res.answers == 1
    assert lk.iter.state(near[0].id) == PeerState.FAILED
    assert lk.iter.state(near[1].id) == PeerState.FAILED
    assert not lk.on_response(near[3].id, Message(MessageType.FIND_NODE), 0.0)


def test_get_value_not_found() -> None:
    lk = GetValueLookup(KEY, UNIVERSE[:20], params(), validator=SeqValidator())
    drive(lk, value_responder({}))
    assert lk.result().value is None and lk.corrections() == []
    with pytest.raises(ValueError):
        GetValueLookup(KEY, [], params(), validator=SeqValidator(), quorum=0)


# -- providers --------------------------------------------------------------------------------

MH = b"\x12\x20" + bytes(range(32))


def test_get_providers_deduplicates_and_stops_at_count() -> None:
    prov_a = Peer(peer_id(1000), ())
    prov_a_addr = Peer(peer_id(1000), (b"addr",))
    prov_b = Peer(peer_id(1001), (b"b",))
    inner = honest()

    def respond(p: Peer, m: Message) -> Message | None:
        base = inner(p, m)
        assert base is not None
        provs = (prov_a, prov_a, prov_a_addr) if p.id < b"\x00\x24\x08\x01\x12\x20\x80" else (prov_a,)
        return Message(
            MessageType.GET_PROVIDERS, key=MH, provider_peers=provs, closer_peers=base.closer_peers
        )

    lk = GetProvidersLookup(MH, UNIVERSE[:20], params(), count=5)
    drive(lk, respond)
    assert lk.result() in ([prov_a_addr], [prov_a])  # one distinct provider, never 20 copies
    lk2 = GetProvidersLookup(MH, UNIVERSE[:20], params(), count=2, known=[prov_b])

    def respond2(p: Peer, m: Message) -> Message | None:
        return Message(MessageType.GET_PROVIDERS, key=MH, provider_peers=(prov_a_addr,))

    sent, _ = drive(lk2, respond2)
    assert lk2.result() == [prov_b, prov_a_addr] and sent <= 3
    lk3 = GetProvidersLookup(MH, UNIVERSE[:20], params(), count=1, known=[prov_b])
    assert lk3.step(0.0) == [] and lk3.finished


# -- put / provide ----------------------------------------------------------------------------


def test_put_value_sends_to_the_k_closest_and_counts_echoes() -> None:
    value = make_value(KEY, 4)
    near = closest_in_universe(kad_key(KEY), 20)
    refuse = near[0].id
    silent = near[1].id
    inner = honest()

    def respond(p: Peer, m: Message) -> Message | None:
        if m.type == MessageType.FIND_NODE:
            return inner(p, m)
        assert m.type == MessageType.PUT_VALUE and m.record == Record(KEY, value)
        if p.id == silent:
            return None
        if p.id == refuse:
            return Message(MessageType.PUT_VALUE, key=KEY, record=Record(KEY, make_value(KEY, 9)))
        return m

    lk = PutValueLookup(KEY, value, UNIVERSE[:20], params(request_timeout=1.0))
    drive(lk, respond)
    assert [p.id for p in lk.targets] == [p.id for p in near]
    assert set(lk.succeeded) == {p.id for p in near[2:]}
    assert set(lk.failed) == {refuse, silent}


def test_put_value_refusal_is_not_misbehaviour_but_a_wrong_reply_type_is() -> None:
    value = make_value(KEY, 4)
    lk = PutValueLookup(KEY, value, UNIVERSE[:2], params(k=2))
    out = lk.step(0.0)
    for o in out:
        assert lk.on_response(o.peer.id, Message(MessageType.FIND_NODE, key=KEY), 0.0)
    second = lk.step(0.0)
    assert [o.message.type for o in second] == [MessageType.PUT_VALUE] * 2
    newer = Message(MessageType.PUT_VALUE, key=KEY, record=Record(KEY, make_value(KEY, 9)))
    assert lk.on_response(second[0].peer.id, newer, 0.0)  # refused with a newer record: fine
    assert not lk.on_response(second[1].peer.id, Message(MessageType.PING), 0.0)  # garbage
    assert lk.finished and lk.succeeded == [] and len(lk.failed) == 2


def test_provide_sends_add_provider_fire_and_forget() -> None:
    me = Peer(LOCAL, (b"me",))
    lk = ProvideLookup(MH, me, UNIVERSE[:20], params())
    sent_second: list[Message] = []
    inner = honest()

    def respond(p: Peer, m: Message) -> Message | None:
        if m.type == MessageType.ADD_PROVIDER:
            sent_second.append(m)
            return None
        return inner(p, m)

    out = lk.step(0.0)
    while not lk.finished:
        nxt = []
        for o in out:
            if o.expect_reply:
                r = respond(o.peer, o.message)
                assert r is not None
                lk.on_response(o.peer.id, r, 0.0)
            else:
                assert o.message == Message(MessageType.ADD_PROVIDER, key=MH, provider_peers=(me,))
                sent_second.append(o.message)
        nxt = lk.step(0.0)
        out = nxt
    for o in out:
        assert not o.expect_reply
        sent_second.append(o.message)
    assert len(sent_second) == 20 and len(lk.succeeded) == 20
