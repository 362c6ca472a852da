"""Proof-of-work difficulty from the signup rate (Java DifficultyGenerator and RateMonitor)."""

from __future__ import annotations

import math
import random

import pytest

from peergos_node.corenode.difficulty import (
    DEFAULT_DIFFICULTY,
    MAX_DIFFICULTY,
    MIN_DIFFICULTY,
    DifficultyGenerator,
    RateMonitor,
    calculate_difficulty,
)

START = 1_777_593_600_000


class JavaRateMonitor:
    """A line-by-line transcription of Java's RateMonitor, stepping one tick at a time (the reference)."""

    def __init__(self, n: int) -> None:
        self.time_steps_count = 0
        self.buckets = [0] * n

    def add_event(self) -> None:
        self.buckets[0] += 1

    def time_step(self) -> None:
        self.time_steps_count += 1
        for i in range(len(self.buckets) - 1, -1, -1):
            if self.time_steps_count % (1 << i) == 0:
                if i + 1 < len(self.buckets):
                    self.buckets[i + 1] += self.buckets[i]
                self.buckets[i] = 0

    def time_steps(self, steps: int) -> None:
        if steps > 1 << len(self.buckets):
            self.buckets = [0] * len(self.buckets)
        else:
            for _ in range(steps):
                self.time_step()


@pytest.mark.parametrize("seed", range(6))
def test_jumping_monitor_equals_java_stepping(seed: int) -> None:
    rnd = random.Random(seed)
    n = 8  # small enough for the reference to step through every tick
    ours, java = RateMonitor(n), JavaRateMonitor(n)
    for _ in range(300):
        action = rnd.random()
        if action < 0.4:
            for _ in range(rnd.randint(1, 5)):
                ours.add_event()
                java.add_event()
        else:
            steps = rnd.choice([0, 1, 2, 3, 7, 64, 255, 256, 257, rnd.randint(0, 600)])
            ours.time_steps(steps)
            java.time_steps(steps)
        assert ours.rates() == tuple(java.buckets)


def test_long_gap_clears_without_advancing_the_counter() -> None:
    m = RateMonitor(4)
    m.add_event()
    m.time_steps(1)  # counter 1: bucket 0 -> 1
    assert m.rates() == (0, 1, 0, 0)
    m.time_steps(17)  # > 2^4: cleared, counter stays at 1
    assert m.rates() == (0, 0, 0, 0)
    m.add_event()
    m.time_steps(1)  # counter 2: buckets 1 and 0 move
    assert m.rates() == (0, 1, 0, 0)


def test_full_size_monitor_handles_a_day_in_one_update() -> None:
    m = RateMonitor()
    for _ in range(50):
        m.add_event()
    m.time_steps(1 << 20)
    java = JavaRateMonitor(20)
    for _ in range(50):
        java.add_event()
    # the Java reference would need a million ticks; the events have left every bucket by then
    assert m.rates() == (0,) * 20
    java.time_steps(1 << 21)
    assert tuple(java.buckets) == m.rates()


def test_difficulty_formula() -> None:
    limits = tuple(1000 / 864000 * (1 << i) for i in range(20))
    assert calculate_difficulty((0,) * 20, limits) == MIN_DIFFICULTY
    one = (1,) + (0,) * 19
    assert calculate_difficulty(one, limits) == int(2 * math.log(2 / limits[0]) + DEFAULT_DIFFICULTY) == 25
    assert calculate_difficulty((10**9,) * 20, limits) == MAX_DIFFICULTY
    assert calculate_difficulty(one, (0.0,) * 20) == MAX_DIFFICULTY


def test_generator_rises_with_rate_and_recovers() -> None:
    gen = DifficultyGenerator(START, 1000)
    gen.update_time(START)
    assert gen.current_difficulty == MIN_DIFFICULTY
    gen.add_event()
    gen.update_time(START + 50)  # same tick
    assert gen.current_difficulty == 25
    for _ in range(20):
        gen.add_event()
    gen.update_time(START + 60)
    assert gen.current_difficulty > 25
    gen.update_time(START + 2 * 86_400_000)
    assert gen.current_difficulty == MIN_DIFFICULTY


def test_time_going_backwards_changes_nothing() -> None:
    gen = DifficultyGenerator(START, 1000)
    gen.add_event()
    gen.update_time(START - 10_000)
    assert gen.current_difficulty == 25


def _simulate(max_per_day: int, events: int, speedup: int) -> tuple[DifficultyGenerator, int]:
    """Java's DifficultyGeneratorTests: each event 'sleeps' 2^difficulty ms divided by a hardware speedup."""
    now = START
    gen = DifficultyGenerator(now, max_per_day)
    for _ in range(events):
        gen.add_event()
        now += (1 << (gen.current_difficulty % 64)) // speedup  # Java's long shift is mod 64
        gen.update_time(now)
    return gen, now


def test_rate_limited_like_java() -> None:
    gen, now = _simulate(1000, 100, 1)
    assert now - START > 1000 * 86_400_000 // 100  # won't exceed the daily limit
    gen.update_time(now + 86_400_000 * 100 // 1000)
    assert gen.current_difficulty == MIN_DIFFICULTY  # recovers after a period without signups


@pytest.mark.parametrize("speedup", [1_000, 10_000, 1_000_000])
def test_different_hardware_like_java(speedup: int) -> None:
    _gen, now = _simulate(1000, 1000, speedup)
    assert now - START > 1000 * 86_400_000 // 1000


def test_zero_daily_signups_means_closed() -> None:
    gen = DifficultyGenerator(START, 0)
    assert gen.current_difficulty == MAX_DIFFICULTY
    gen.update_time(START + 10_000_000)
    assert gen.current_difficulty == MAX_DIFFICULTY
    gen.add_event()
    gen.update_time(START + 20_000_000)
    assert gen.current_difficulty == MAX_DIFFICULTY
