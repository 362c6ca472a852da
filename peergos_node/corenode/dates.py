"""Java `LocalDate` semantics for claim expiries (spec/peergos.md §3.2).

Theory of operation
-------------------
A claim's expiry travels as Java's `LocalDate.toString()` text, both in the claim CBOR and inside the
signed payload, and the chain rules compare, add months to and add days to it. Python's `datetime.date`
stops at year 9999, but a key-change link's expiry is `LocalDate.MAX` = `+999999999-12-31`, and Java
accepts any year in ±999,999,999. `LocalDate` here is a small value type with Java's exact behaviour over
that whole range:

- text form: 4-digit zero-padded years, a `-` sign for negative years, a `+` sign for years above 9999
  (`0005-01-02`, `-0005-01-02`, `+10000-01-01`, `+999999999-12-31`);
- parsing is strict: only the canonical text of a real date is accepted (no `2026-02-30`, no `+2026-...`),
  so a parsed date always prints back to the same string;
- `plus_months` clamps the day to the end of the target month (`2026-01-31` + 1 month = `2026-02-28`);
- `to_epoch_day`/`of_epoch_day` count days from 1970-01-01 (used by MFA method creation dates).

Leaving the range raises `ValueError` (Java's `DateTimeException`); parsing bad text raises `DecodeError`.
Dates order naturally (`<`), which is Java's `isBefore`.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from typing import ClassVar

from peergos_node.errors import DecodeError

MIN_YEAR = -999_999_999
MAX_YEAR = 999_999_999
MAX_TEXT = 16
"""Longest text form (`+999999999-12-31`); Java reads claim expiries with this bound."""

_TEXT = re.compile(r"([+-]?)([0-9]{4,9})-([0-9]{2})-([0-9]{2})")
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def is_leap_year(year: int) -> bool:
    """Proleptic Gregorian leap year (Java `IsoChronology.isLeapYear`)."""
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def length_of_month(year: int, month: int) -> int:
    """Days in a month of a year."""
    if month == 2 and is_leap_year(year):
        return 29
    return _DAYS_IN_MONTH[month - 1]


def _days_from_civil(y: int, m: int, d: int) -> int:
    y -= 1 if m <= 2 else 0
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _civil_from_days(z: int) -> tuple[int, int, int]:
    z += 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    return yoe + era * 400 + (1 if m <= 2 else 0), m, d


@dataclass(frozen=True, order=True)
class LocalDate:
    """A date with Java `LocalDate`'s range, text form and arithmetic."""

    year: int
    month: int
    day: int

    MIN: ClassVar[LocalDate]
    MAX: ClassVar[LocalDate]

    def __post_init__(self) -> None:
        for v in (self.year, self.month, self.day):
            if type(v) is not int:
                raise TypeError("LocalDate fields are ints")
        if not MIN_YEAR <= self.year <= MAX_YEAR:
            raise ValueError(f"year {self.year} outside Java's LocalDate range")
        if not 1 <= self.month <= 12:
            raise ValueError(f"invalid month {self.month}")
        if not 1 <= self.day <= length_of_month(self.year, self.month):
            raise ValueError(f"invalid day {self.day} for {self.year}-{self.month:02d}")

    @classmethod
    def parse(cls, text: str) -> LocalDate:
        """Parse Java's canonical ISO text (DecodeError for anything else)."""
        if type(text) is not str or len(text) > MAX_TEXT:
            raise DecodeError("a date is at most 16 characters of text")
        m = _TEXT.fullmatch(text)
        if m is None:
            raise DecodeError(f"not an ISO date: {text!r}")
        sign, digits, month, day = m.groups()
        year = -int(digits) if sign == "-" else int(digits)
        try:
            date = cls(year, int(month), int(day))
        except ValueError as e:
            raise DecodeError(f"not a valid date: {text!r} ({e})") from None
        if str(date) != text:
            raise DecodeError(f"not the canonical form of a date: {text!r}")
        return date

    def __str__(self) -> str:
        y = self.year
        if y < 0:
            year = f"-{-y:04d}"
        elif y > 9999:
            year = f"+{y}"
        else:
            year = f"{y:04d}"
        return f"{year}-{self.month:02d}-{self.day:02d}"

    def iso(self) -> str:
        """Java's `toString()` (same as `str(date)`)."""
        return str(self)

    @classmethod
    def of_epoch_day(cls, epoch_day: int) -> LocalDate:
        """The date `epoch_day` days after 1970-01-01 (ValueError outside the range)."""
        if not _MIN_EPOCH_DAY <= epoch_day <= _MAX_EPOCH_DAY:
            raise ValueError(f"epoch day {epoch_day} outside Java's LocalDate range")
        return cls(*_civil_from_days(epoch_day))

    def to_epoch_day(self) -> int:
        """Days since 1970-01-01 (negative before)."""
        return _days_from_civil(self.year, self.month, self.day)

    @classmethod
    def from_date(cls, date: _dt.date) -> LocalDate:
        """From a Python date."""
        return cls(date.year, date.month, date.day)

    @classmethod
    def from_epoch_seconds(cls, seconds: float) -> LocalDate:
        """The UTC date of a Unix time."""
        return cls.of_epoch_day(int(seconds // 86400))

    def to_date(self) -> _dt.date:
        """As a Python date (ValueError for years outside 1..9999)."""
        return _dt.date(self.year, self.month, self.day)

    def plus_days(self, days: int) -> LocalDate:
        """Java `plusDays` (ValueError when leaving the range, e.g. `MAX.plus_days(1)`)."""
        return LocalDate.of_epoch_day(self.to_epoch_day() + days)

    def plus_months(self, months: int) -> LocalDate:
        """Java `plusMonths`: the day is clamped to the length of the target month."""
        count = self.year * 12 + (self.month - 1) + months
        year, month0 = divmod(count, 12)
        if not MIN_YEAR <= year <= MAX_YEAR:
            raise ValueError("date arithmetic left Java's LocalDate range")
        month = month0 + 1
        return LocalDate(year, month, min(self.day, length_of_month(year, month)))

    def is_before(self, other: LocalDate) -> bool:
        """Java `isBefore`."""
        return self < other


LocalDate.MIN = LocalDate(MIN_YEAR, 1, 1)
LocalDate.MAX = LocalDate(MAX_YEAR, 12, 31)
_MIN_EPOCH_DAY = _days_from_civil(MIN_YEAR, 1, 1)
_MAX_EPOCH_DAY = _days_from_civil(MAX_YEAR, 12, 31)

__all__ = ["MAX_TEXT", "LocalDate", "is_leap_year", "length_of_month"]
