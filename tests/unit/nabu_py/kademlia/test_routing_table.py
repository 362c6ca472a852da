"""k-bucket routing table: invariants under random operations, eviction policy, closest()."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from nabu_py.protocols.kademlia.keys import KEY_BITS, kad_key
from nabu_py.protocols.kademlia.messages import Peer
from nabu_py.protocols.kademlia.routing_table import AddStatus, RoutingTable
from tests.helpers.kad import peer_id

LOCAL = peer_id(0)


def _peer(n: int) -> Peer:
    return Peer(peer_id(n), (b"addr%d" % n,))


def _check_invariants(t: RoutingTable) -> None:
    seen: set[bytes] = set()
    total = 0
    for i in range(KEY_BITS):
        live, cache = t.bucket(i)
        assert len(live) <= t.k
        assert len(cache) <= t.replacement_cache_size
        for p in live + cache:
            assert p.id != t.local_peer_id
            assert t.bucket_index(p.id) == i
        ids = [p.id for p in live]
        assert not set(ids) & {p.id for p in cache}
        assert not seen & set(ids)
        seen.update(ids)
        total += len(live)
        times = [t.last_seen(p) for p in ids]
        assert times == sorted(times)  # type: ignore[type-var]
    assert total == len(t) == len(list(t))


ops = st.lists(
    st.tuples(st.sampled_from(["add", "client", "fail", "remove"]), st.integers(0, 400), st.floats(0, 50)),
    max_size=300,
)


@settings(max_examples=300, deadline=None)
@given(ops, st.integers(1, 6), st.integers(0, 3))
def test_invariants_under_random_operations(seq: list[tuple[str, int, float]], k: int, cache: int) -> None:
    t = RoutingTable(LOCAL, k=k, replacement_cache_size=cache, liveness_interval=5.0, max_failures=2)
    now = 0.0
    clients: set[bytes] = set()
    for op, n, dt in seq:
        now += dt
        p = _peer(n)
        if op == "add":
            t.add(p, now, server=p.id not in clients)
        elif op == "client":
            clients.add(p.id)
            assert t.add(p, now, server=False).status == AddStatus.REJECTED
            assert p.id not in t
        elif op == "fail":
            t.record_failure(p.id, now)
        else:
            t.remove(p.id)
            assert p.id not in t
        _check_invariants(t)
    for cid in clients:
        assert cid not in t
    assert LOCAL not in t


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(1, 3000), min_size=0, max_size=200, unique=True),
    st.integers(0, 10**6),
    st.integers(1, 30),
)
def test_closest_matches_brute_force(ns: list[int], target_seed: int, count: int) -> None:
    t = RoutingTable(LOCAL, k=8)
    for n in ns:
        t.add(_peer(n), 0.0)
    target = kad_key(b"target%d" % target_seed)
    exclude = _peer(ns[0]).id if ns else None
    want = sorted((p for p in t if p.id != exclude), key=lambda p: kad_key(p.id) ^ target)[:count]
    assert t.closest(target, count, exclude=exclude) == want
    # and towards our own key (the FIND_NODE-self case of the lookup)
    want_self = sorted(t, key=lambda p: kad_key(p.id) ^ t.local_key)[:count]
    assert t.closest(t.local_key, count) == want_self


def test_never_contains_itself_or_empty_ids() -> None:
    t = RoutingTable(LOCAL)
    assert t.add(Peer(LOCAL), 0.0).status == AddStatus.REJECTED
    assert t.add(Peer(b""), 0.0).status == AddStatus.REJECTED
    assert len(t) == 0


def test_client_mode_peer_is_removed_when_it_switches() -> None:
    t = RoutingTable(LOCAL)
    p = _peer(1)
    assert t.add(p, 0.0).status == AddStatus.ADDED
    assert t.add(p, 1.0, server=False).status == AddStatus.REJECTED
    assert p.id not in t and len(t) == 0


def _same_bucket_peers(t: RoutingTable, bucket: int, n: int) -> list[Peer]:
    out: list[Peer] = []
    i = 1
    while len(out) < n:
        p = _peer(i)
        if t.bucket_index(p.id) == bucket:
            out.append(p)
        i += 1
    return out


def test_full_bucket_caches_newcomer_and_probes_stale_lru_then_evicts_on_failure() -> None:
    t = RoutingTable(LOCAL, k=3, replacement_cache_size=2, liveness_interval=10.0, probe_timeout=5.0)
    a, b, c, d, e = _same_bucket_peers(t, 0, 5)
    for i, p in enumerate((a, b, c)):
        assert t.add(p, float(i)).status == AddStatus.ADDED
    # LRU `a` was seen 5 s ago: recent enough, no probe
    r = t.add(d, 5.0)
    assert r.status == AddStatus.CACHED and r.probe is None
    # later, `a` is stale: probe it (once until the probe times out)
    r = t.add(e, 20.0)
    assert r.status == AddStatus.CACHED and r.probe == a
    assert t.add(d, 21.0).probe is None
    assert t.bucket(0)[1] == [e, d]  # most recent last
    # probe failed -> evicted, most recently seen replacement promoted
    assert t.record_failure(a.id, 22.0)
    live, cache = t.bucket(0)
    assert [p.id for p in live] == [b.id, c.id, d.id] and cache == [e]
    assert a.id not in t


def test_probe_success_keeps_entry_and_moves_it_to_the_tail() -> None:
    t = RoutingTable(LOCAL, k=2, liveness_interval=10.0)
    a, b, c = _same_bucket_peers(t, 0, 3)
    t.add(a, 0.0)
    t.add(b, 1.0)
    assert t.add(c, 30.0).probe == a
    assert t.add(a, 31.0).status == AddStatus.UPDATED
    assert [p.id for p in t.bucket(0)[0]] == [b.id, a.id]
    assert c.id not in t


def test_failures_without_replacement_evict_after_max_failures() -> None:
    t = RoutingTable(LOCAL, k=5, max_failures=3)
    p = _peer(1)
    t.add(p, 0.0)
    assert not t.record_failure(p.id, 1.0)
    assert not t.record_failure(p.id, 2.0)
    assert t.record_failure(p.id, 3.0)
    assert p.id not in t
    assert not t.record_failure(p.id, 4.0)


def test_success_resets_failures_and_refreshes_addresses() -> None:
    t = RoutingTable(LOCAL, max_failures=2)
    p = _peer(1)
    t.add(p, 0.0)
    t.record_failure(p.id, 1.0)
    t.add(Peer(p.id, (b"new",)), 2.0)
    assert not t.record_failure(p.id, 3.0)
    assert t.get(p.id) == Peer(p.id, (b"new",))
    t.add(Peer(p.id, ()), 4.0)  # an empty address list does not erase known addresses
    assert t.get(p.id) == Peer(p.id, (b"new",))


def test_a_realistic_table_fills_k_per_bucket() -> None:
    t = RoutingTable(LOCAL)
    for n in range(1, 5000):
        t.add(_peer(n), 0.0)
    _check_invariants(t)
    assert len(t.bucket(0)[0]) == 20 and len(t.bucket(1)[0]) == 20
    assert 100 < len(t) < 400


def test_refresh_bookkeeping() -> None:
    t = RoutingTable(LOCAL)
    for n in range(1, 300):
        t.add(_peer(n), 0.0)
    due = t.buckets_due_for_refresh(100.0, 50.0)
    assert due[0] == 0 and len(due) >= 5
    t.mark_refreshed(t.local_key ^ (1 << 255), 90.0)  # a key in bucket 0
    assert 0 not in t.buckets_due_for_refresh(100.0, 50.0)
    assert 0 in t.buckets_due_for_refresh(200.0, 50.0)
