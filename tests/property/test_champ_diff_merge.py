"""CHAMP diff and 3-way merge against dict models (spec §4.4, §5.2).

`diff(a, b)` must equal the dict difference for any two trees; merging disjoint edits must equal applying
both edit sets to the base; edits that touch a common key must raise ConcurrentModification.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peergos_node.champ import Champ, ConcurrentModification, MemoryBlockStore
from tests.helpers.champ import SAFE_KEY_POOL, VALUES, dict_diff
from tests.helpers.fuzz import round_trip_settings

# Each example builds three trees of up to 45 keys; 500 examples keep the file at a few seconds.
merge_settings = settings(round_trip_settings, max_examples=500)

mappings = st.dictionaries(
    st.sampled_from(SAFE_KEY_POOL), st.sampled_from(VALUES), max_size=len(SAFE_KEY_POOL)
)


@st.composite
def edits_of(draw: st.DrawFn, base: dict[bytes, Any], keys: list[bytes]) -> dict[bytes, Any]:
    """A real change for each key: a new value, or removal of a present key (None)."""
    out: dict[bytes, Any] = {}
    for key in keys:
        old = base.get(key)
        choices = [v for v in VALUES if not (type(v) is type(old) and v == old)]
        if old is not None:
            choices.append(None)
        out[key] = draw(st.sampled_from(choices))
    return out


def _applied(base: dict[bytes, Any], *edit_sets: dict[bytes, Any]) -> dict[bytes, Any]:
    out = dict(base)
    for edits in edit_sets:
        for key, value in edits.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = value
    return out


@round_trip_settings
@given(mappings, mappings)
def test_diff_equals_the_dict_difference(a: dict[bytes, Any], b: dict[bytes, Any]) -> None:
    champ = Champ(MemoryBlockStore())
    ra, rb = champ.build(a), champ.build(b)
    forward = {c.key: (c.old, c.new) for c in champ.diff(ra, rb)}
    assert forward == dict_diff(a, b)
    assert {c.key: (c.new, c.old) for c in champ.diff(rb, ra)} == forward
    # Applying the diff to a gives b.
    assert champ.apply(ra, champ.diff(ra, rb)) == rb


@merge_settings
@given(st.data(), mappings)
def test_merge_of_disjoint_edits_applies_both(data: st.DataObject, base: dict[bytes, Any]) -> None:
    keys = data.draw(st.permutations(SAFE_KEY_POOL))
    split = data.draw(st.integers(0, len(keys)))
    ours_keys = data.draw(st.lists(st.sampled_from(keys[:split]), unique=True)) if split else []
    theirs_keys = data.draw(st.lists(st.sampled_from(keys[split:]), unique=True)) if split < len(keys) else []
    ours_edits = data.draw(edits_of(base, ours_keys))
    theirs_edits = data.draw(edits_of(base, theirs_keys))
    champ = Champ(MemoryBlockStore())
    rb = champ.build(base)
    ro = champ.build(_applied(base, ours_edits))
    rt = champ.build(_applied(base, theirs_edits))
    merged = champ.merge(rb, ro, rt)
    assert merged == champ.build(_applied(base, ours_edits, theirs_edits))
    assert champ.merge(rb, rt, ro) == merged


@merge_settings
@given(st.data(), mappings)
def test_merge_of_overlapping_edits_fails(data: st.DataObject, base: dict[bytes, Any]) -> None:
    shared = data.draw(st.lists(st.sampled_from(SAFE_KEY_POOL), min_size=1, unique=True))
    others = [k for k in SAFE_KEY_POOL if k not in shared]
    extra = data.draw(st.lists(st.sampled_from(others), unique=True)) if others else []
    ours_edits = data.draw(edits_of(base, shared))
    theirs_edits = data.draw(edits_of(base, [*shared, *extra]))
    champ = Champ(MemoryBlockStore())
    rb = champ.build(base)
    ro = champ.build(_applied(base, ours_edits))
    rt = champ.build(_applied(base, theirs_edits))
    with pytest.raises(ConcurrentModification) as e:
        champ.merge(rb, ro, rt)
    assert e.value.keys == frozenset(shared)
