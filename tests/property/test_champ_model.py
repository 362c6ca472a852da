"""The CHAMP against a dict: random puts, removes, CAS failures, batches and collisions (spec §5.2).

After every step the tree must hold exactly the model's mappings, be valid and canonical (its root equals
the root of a tree built from scratch from the model), and `diff` from the previous root must report
exactly the model's changes. Failed operations (CAS mismatches, "Hash collision!") must leave the root
unchanged and write nothing. The key pool (tests/helpers/champ.py) reaches deep chains, depth-31 splits,
collisions and short keys.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from peergos_node.champ import (
    CasError,
    Champ,
    Change,
    HashCollision,
    KeyHasher,
    MemoryBlockStore,
    blake2b_hasher,
    identity_hasher,
    same_value,
)
from tests.helpers.champ import (
    COLLIDING_KEYS,
    DEEP_KEYS,
    RANDOM_KEYS,
    SAFE_KEY_POOL,
    SHARED4_KEYS,
    SHORT_KEYS,
    VALUES,
    collides,
    dict_diff,
)

HASHERS: dict[str, KeyHasher] = {"identity": identity_hasher, "blake2b": blake2b_hasher}
# One cluster of the pool per draw, so that clustered keys (deep chains, collisions) meet often.
keys = st.one_of(
    st.sampled_from(RANDOM_KEYS),
    st.sampled_from(SHARED4_KEYS),
    st.sampled_from(DEEP_KEYS),
    st.sampled_from(COLLIDING_KEYS),
    st.sampled_from(SHORT_KEYS),
)
values = st.sampled_from(VALUES)
maybe_values = st.one_of(st.none(), values)


class ChampVersusDict(RuleBasedStateMachine):
    """Model-based test; `HASHER_NAME` names the key hasher under test."""

    HASHER_NAME = "identity"

    def __init__(self) -> None:
        super().__init__()
        self.hasher: KeyHasher = HASHERS[self.HASHER_NAME]
        self.store = MemoryBlockStore()
        # A small cache so that eviction and re-decoding are exercised too.
        self.champ = Champ(self.store, self.hasher, cache_size=16)
        self.root = self.champ.create_empty()
        self.model: dict[bytes, Any] = {}
        self.prev_root = self.root
        self.prev_model: dict[bytes, Any] = {}

    # ---- helpers -----------------------------------------------------------------------------------
    def _commit(self, new_root: Any, new_model: dict[bytes, Any]) -> None:
        self.prev_root, self.prev_model = self.root, self.model
        self.root, self.model = new_root, new_model

    def _expect_failure(self, exc: type[Exception] | tuple[type[Exception], ...], op: Any) -> None:
        puts = self.store.puts
        with pytest.raises(exc):
            op()
        assert self.store.puts == puts, "a failed operation wrote blocks"

    # ---- rules -------------------------------------------------------------------------------------
    @initialize(
        chosen=st.lists(st.booleans(), min_size=len(SAFE_KEY_POOL), max_size=len(SAFE_KEY_POOL)),
        vals=st.lists(values, min_size=len(SAFE_KEY_POOL), max_size=len(SAFE_KEY_POOL)),
    )
    def preload(self, chosen: list[bool], vals: list[Any]) -> None:
        """Start from a random subset of the pool (about half of it: deep chains are common)."""
        start = {k: v for k, v, c in zip(SAFE_KEY_POOL, vals, chosen, strict=True) if c}
        self._commit(self.champ.put_all(self.root, start), start)

    @rule(key=keys, value=values)
    def put(self, key: bytes, value: Any) -> None:
        new_model = {**self.model, key: value}
        if collides(new_model, self.hasher):
            event("put: hash collision")
            self._expect_failure(
                HashCollision, lambda: self.champ.put(self.root, key, self.model.get(key), value)
            )
            return
        self._commit(self.champ.put(self.root, key, self.model.get(key), value), new_model)

    @rule(key=keys, expected=maybe_values, value=values)
    def put_with_wrong_expectation(self, key: bytes, expected: Any, value: Any) -> None:
        if same_value(expected, self.model.get(key)):
            return
        self._expect_failure(CasError, lambda: self.champ.put(self.root, key, expected, value))

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data())
    def remove_present(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.model)))
        new_model = {k: v for k, v in self.model.items() if k != key}
        self._commit(self.champ.remove(self.root, key, self.model[key]), new_model)

    @rule(key=keys)
    def remove_any(self, key: bytes) -> None:
        new_root = self.champ.remove(self.root, key, self.model.get(key))
        if key not in self.model:
            assert new_root == self.root
        self._commit(new_root, {k: v for k, v in self.model.items() if k != key})

    @rule(key=keys, expected=maybe_values)
    def remove_with_wrong_expectation(self, key: bytes, expected: Any) -> None:
        if same_value(expected, self.model.get(key)):
            return
        self._expect_failure(CasError, lambda: self.champ.remove(self.root, key, expected))

    @rule(key=keys)
    def get(self, key: bytes) -> None:
        assert same_value(self.champ.get(self.root, key), self.model.get(key))

    @rule(edits=st.lists(st.tuples(keys, maybe_values), max_size=12), corrupt=st.booleans())
    def batch(self, edits: list[tuple[bytes, Any]], corrupt: bool) -> None:
        model = dict(self.model)
        changes: list[Change] = []
        for key, new in edits:
            changes.append(Change(key, model.get(key), new))
            if new is None:
                model.pop(key, None)
            else:
                model[key] = new
        if corrupt and changes:
            key, old, new = changes[-1]
            wrong = next(v for v in [None, *VALUES] if not same_value(v, old))
            changes[-1] = Change(key, wrong, new)
            # Both failures are checked before anything is written; either may be found first.
            failure = (CasError, HashCollision) if collides(model, self.hasher) else CasError
            self._expect_failure(failure, lambda: self.champ.apply(self.root, changes))
            return
        if collides(model, self.hasher):
            event("batch: hash collision")
            self._expect_failure(HashCollision, lambda: self.champ.apply(self.root, changes))
            return
        self._commit(self.champ.apply(self.root, changes), model)

    @rule(to_remove=st.lists(keys, max_size=8))
    def remove_all(self, to_remove: list[bytes]) -> None:
        gone = set(to_remove)
        self._commit(
            self.champ.remove_all(self.root, to_remove),
            {k: v for k, v in self.model.items() if k not in gone},
        )

    # ---- invariants --------------------------------------------------------------------------------
    @invariant()
    def holds_exactly_the_model(self) -> None:
        items = list(self.champ.items(self.root))
        assert len(items) == len(self.model)
        assert all(same_value(v, self.model[k]) for k, v in items)
        assert self.champ.validate(self.root) == len(self.model)
        depth = max(d for d, _node in self.champ._walk(self.root))
        event(f"tree depth {'>= 29' if depth >= 29 else '1-28' if depth else '0'}")

    @invariant()
    def is_canonical(self) -> None:
        assert self.root == self.champ.build(self.model)

    @invariant()
    def diff_matches_the_model(self) -> None:
        got = {c.key: (c.old, c.new) for c in self.champ.diff(self.prev_root, self.root)}
        assert got == dict_diff(self.prev_model, self.model)


class Blake2bChampVersusDict(ChampVersusDict):
    HASHER_NAME = "blake2b"


TestChampVersusDict = ChampVersusDict.TestCase
TestChampVersusDict.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)

TestBlake2bChampVersusDict = Blake2bChampVersusDict.TestCase
TestBlake2bChampVersusDict.settings = settings(max_examples=40, stateful_step_count=40, deadline=None)
