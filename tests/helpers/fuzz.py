"""Shared settings for decoder fuzz tests."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

FUZZ_EXAMPLES = 10_000
"""Examples per decoder per run (the foundation issue asks for at least 10,000 in CI)."""

fuzz_settings = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    database=None,
)

ROUND_TRIP_EXAMPLES = 2_000
"""Examples for structure-generating round-trip properties (generation dominates their cost)."""

round_trip_settings = settings(
    max_examples=ROUND_TRIP_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    database=None,
)
