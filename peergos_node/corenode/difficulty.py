"""Proof-of-work difficulty that rises with the signup rate (spec/peergos.md §2.1, §13; Java
`DifficultyGenerator`, `RateMonitor`).

Theory of operation
-------------------
The PKI node counts signups (and other rate-limited PKI writes) in a `RateMonitor`: 20 buckets, time in
steps of 0.1 s, bucket `i` holding the events of roughly the steps between 2^i and 2^(i+1) ago. At each
step `t` every bucket `i` with `t % 2^i == 0` moves into bucket `i + 1`, from the highest down (the last
bucket's events fall off), so 2^20 steps (~29 hours) cover a day. A jump of more than 2^20 steps empties
every bucket (and, as in Java, does not advance the step counter).

The allowed rate is `max_daily_signups / 864000` events per step, so bucket `i` may hold
`max_per_step * 2^i` events. The difficulty is

    d = int(2 * sum(ln(2 * rate_i / max_i) for each bucket over its maximum) + 11)

clamped to [0, 256], and 0 (`ProofOfWork.MIN_DIFFICULTY`) when no bucket is over: each doubling of the
rate over the limit costs two more bits, i.e. four times the work.

`max_daily_signups = 0` means closed: the difficulty is always 256. (Java starts at 256 but its first
`updateTime` with empty buckets computes 0, so one signup a day gets through; that is fixed here.)

This is Java's arithmetic to the bit (IEEE doubles, `(int)` truncation, Java's integer division of
negative time differences), but where Java steps one 0.1 s tick at a time (up to a million iterations per
update) this jumps straight to the next tick at which a non-empty bucket moves: between two such ticks
nothing changes, so the result is identical and each update costs at most ~20 iterations.

Time is a parameter (`now_millis`); nothing here reads a clock.
"""

from __future__ import annotations

import math

from peergos_node.crypto.pow import ProofOfWork

MIN_DIFFICULTY = 0
DEFAULT_DIFFICULTY = 11
MAX_DIFFICULTY = 256
N_BUCKETS = 20
STEP_MILLIS = 100
STEPS_PER_DAY = 864_000
_INT_MAX = (1 << 31) - 1


class RateMonitor:
    """Java `RateMonitor`: event counts in exponentially growing age buckets."""

    def __init__(self, n_buckets: int = N_BUCKETS) -> None:
        if n_buckets < 1:
            raise ValueError("a rate monitor needs at least one bucket")
        self._steps = 0
        self._buckets = [0] * n_buckets

    def add_event(self) -> None:
        """Count one event now."""
        self._buckets[0] += 1

    def _step_to(self, t: int) -> None:
        b = self._buckets
        top = len(b) - 1
        for i in range(min((t & -t).bit_length() - 1, top), -1, -1):
            if i < top:
                b[i + 1] += b[i]
            b[i] = 0

    def time_steps(self, steps: int) -> None:
        """Advance `steps` ticks (Java `timeSteps`)."""
        if steps > 1 << len(self._buckets):
            self._buckets = [0] * len(self._buckets)
            return
        target = self._steps + steps
        while self._steps < target:
            lowest = next((i for i, v in enumerate(self._buckets) if v), None)
            if lowest is None:
                self._steps = target
                return
            nxt = ((self._steps >> lowest) + 1) << lowest
            if nxt > target:
                self._steps = target
                return
            self._steps = nxt
            self._step_to(nxt)

    def rates(self) -> tuple[int, ...]:
        """The bucket counts, youngest first."""
        return tuple(self._buckets)


def _java_int(x: float) -> int:
    """Java's `(int)` cast of a double."""
    if math.isnan(x):
        return 0
    if x >= _INT_MAX:
        return _INT_MAX
    if x <= -_INT_MAX - 1:
        return -_INT_MAX - 1
    return int(x)


def _java_div(a: int, b: int) -> int:
    """Java integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def calculate_difficulty(rates: tuple[int, ...], max_per_bucket: tuple[float, ...]) -> int:
    """Java `DifficultyGenerator.calculateDifficulty`."""
    total = 0.0
    included = 0
    for rate, limit in zip(rates, max_per_bucket, strict=True):
        if rate > limit:
            total += math.inf if limit == 0.0 else math.log(float(rate) * 2 / limit)
            included += 1
    if included == 0:
        return MIN_DIFFICULTY
    return min(max(MIN_DIFFICULTY, _java_int(2 * total + DEFAULT_DIFFICULTY)), MAX_DIFFICULTY)


class DifficultyGenerator:
    """The proof-of-work difficulty for a rate-limited event (`max-daily-signups`)."""

    def __init__(self, start_millis: int, max_per_day: int) -> None:
        if max_per_day < 0:
            raise ValueError("max_per_day cannot be negative")
        self._last_update = start_millis
        self._monitor = RateMonitor(N_BUCKETS)
        max_per_step = float(max_per_day) / STEPS_PER_DAY
        self._max_per_bucket = tuple(max_per_step * float(1 << i) for i in range(N_BUCKETS))
        self._closed = max_per_day == 0
        self._difficulty = MAX_DIFFICULTY if self._closed else MIN_DIFFICULTY

    @property
    def current_difficulty(self) -> int:
        """The difficulty a proof must meet now (as of the last `update_time`)."""
        return self._difficulty

    def update_time(self, now_millis: int) -> None:
        """Advance to `now_millis` and recompute the difficulty (call before checking a proof)."""
        steps = _java_div(now_millis - self._last_update, STEP_MILLIS)
        if steps > 0:
            self._monitor.time_steps(steps)
            self._last_update = now_millis
        if self._closed:
            return
        self._difficulty = calculate_difficulty(self._monitor.rates(), self._max_per_bucket)

    def add_event(self) -> None:
        """Count an accepted event (after its proof was checked)."""
        self._monitor.add_event()

    def admit(self, proof: ProofOfWork, data: bytes, now_millis: int) -> int | None:
        """Java `enforceRateLimit`: advance the clock, check `proof` over `data` against the current
        difficulty; if it is enough, count the event and return None, else return the difficulty to retry
        with (the client redoes the work and sends again)."""
        self.update_time(now_millis)
        required = self._difficulty
        if not proof.satisfies(data, required):
            return required
        self.add_event()
        return None


__all__ = [
    "DEFAULT_DIFFICULTY",
    "MAX_DIFFICULTY",
    "MIN_DIFFICULTY",
    "DifficultyGenerator",
    "RateMonitor",
    "calculate_difficulty",
]
