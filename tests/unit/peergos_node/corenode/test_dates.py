"""Java LocalDate semantics of claim expiries."""

from __future__ import annotations

import datetime as dt

import pytest

from peergos_node.corenode.dates import LocalDate, is_leap_year
from peergos_node.errors import DecodeError


@pytest.mark.parametrize(
    ("date", "text"),
    [
        (LocalDate(2026, 5, 1), "2026-05-01"),
        (LocalDate(5, 1, 2), "0005-01-02"),
        (LocalDate(0, 12, 31), "0000-12-31"),
        (LocalDate(-5, 1, 2), "-0005-01-02"),
        (LocalDate(-12345, 6, 7), "-12345-06-07"),
        (LocalDate(9999, 12, 31), "9999-12-31"),
        (LocalDate(10000, 1, 1), "+10000-01-01"),
        (LocalDate.MAX, "+999999999-12-31"),
        (LocalDate.MIN, "-999999999-01-01"),
    ],
)
def test_text_form_matches_java(date: LocalDate, text: str) -> None:
    assert str(date) == text == date.iso()
    assert LocalDate.parse(text) == date


@pytest.mark.parametrize(
    "text",
    [
        "+2026-05-01",  # sign only for years beyond 4 digits
        "02026-05-01",  # 5 digits need a sign
        "2026-5-01",
        "2026-05-1",
        "2026-02-30",
        "2025-02-29",
        "2026-13-01",
        "2026-00-10",
        "2026-05-01 ",
        "2026-05-01\n",
        "",
        "+1000000000-01-01",
        "\uff12\uff10\uff12\uff16-05-01",  # full-width digits
    ],
)
def test_non_canonical_or_invalid_text_is_refused(text: str) -> None:
    with pytest.raises(DecodeError):
        LocalDate.parse(text)


def test_leap_years() -> None:
    assert LocalDate.parse("2024-02-29") == LocalDate(2024, 2, 29)
    assert [is_leap_year(y) for y in (1900, 2000, 2024, 2026, -4, -100, -400)] == [
        False,
        True,
        True,
        False,
        True,
        False,
        True,
    ]


def test_plus_months_clamps_to_month_end() -> None:
    assert LocalDate(2026, 1, 31).plus_months(1) == LocalDate(2026, 2, 28)
    assert LocalDate(2024, 1, 31).plus_months(1) == LocalDate(2024, 2, 29)
    assert LocalDate(2026, 12, 15).plus_months(2) == LocalDate(2027, 2, 15)
    assert LocalDate(2026, 3, 31).plus_months(-1) == LocalDate(2026, 2, 28)
    assert LocalDate(2025, 12, 31).plus_months(2) == LocalDate(2026, 2, 28)


def test_plus_days_and_range() -> None:
    assert LocalDate(2026, 2, 28).plus_days(1) == LocalDate(2026, 3, 1)
    assert LocalDate(2026, 12, 31).plus_days(1) == LocalDate(2027, 1, 1)
    with pytest.raises(ValueError):
        LocalDate.MAX.plus_days(1)
    with pytest.raises(ValueError):
        LocalDate.MAX.plus_months(1)
    with pytest.raises(ValueError):
        LocalDate(2026, 2, 29)


def test_epoch_days_agree_with_python_and_java() -> None:
    assert LocalDate(1970, 1, 1).to_epoch_day() == 0
    assert LocalDate.MAX.to_epoch_day() == 365241780471  # Java LocalDate.MAX.toEpochDay()
    assert LocalDate.MIN.to_epoch_day() == -365243219162  # Java LocalDate.MIN.toEpochDay()
    epoch = dt.date(1970, 1, 1)
    for days in range(-719_162, 2_932_897, 9_973):
        d = epoch + dt.timedelta(days=days)
        ld = LocalDate.from_date(d)
        assert ld.to_epoch_day() == days
        assert LocalDate.of_epoch_day(days) == ld
        assert ld.to_date() == d
    with pytest.raises(ValueError):
        LocalDate.of_epoch_day(365241780472)


def test_order_is_is_before() -> None:
    a, b = LocalDate(2026, 5, 1), LocalDate(2026, 5, 2)
    assert a < b < LocalDate.MAX and a.is_before(b) and not b.is_before(a)
    assert LocalDate(-1, 12, 31) < LocalDate(0, 1, 1)


def test_from_epoch_seconds_is_utc() -> None:
    assert LocalDate.from_epoch_seconds(0) == LocalDate(1970, 1, 1)
    assert LocalDate.from_epoch_seconds(86399.9) == LocalDate(1970, 1, 1)
    assert LocalDate.from_epoch_seconds(-1) == LocalDate(1969, 12, 31)
    assert LocalDate.from_epoch_seconds(1_777_593_600) == LocalDate(2026, 5, 1)
