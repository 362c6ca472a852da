"""Suite-wide test configuration.

Hypothesis profiles: `default` for local runs; fuzz tests of decoders take their example count from
`tests.helpers.fuzz.FUZZ_EXAMPLES` (10,000, as CI requires) regardless of profile.
"""

from __future__ import annotations

import logging
import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "default",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=os.environ.get("HYPOTHESIS_DERANDOMIZE", "") == "1",
    database=None,
)
settings.load_profile("default")

# py-libp2p writes WARNINGs through the root logger and its own loggers; keep test output readable.
logging.getLogger("libp2p").setLevel(logging.ERROR)
