"""Hypothesis profiles shared by the fuzz and hardening suites: ``ci`` (default) and ``nightly``."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

ENV = "NNC_HYPOTHESIS_PROFILE"
#: Overrides the active profile's base example count, for a campaign bounded in time.
BASE_ENV = "NNC_HYPOTHESIS_BASE"
_SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

#: Examples per test in each profile; tests scale them with ``examples(fraction)``.
MAX_EXAMPLES = {"ci": 100, "nightly": 2500}


def register() -> str:
    """Register both profiles, load the one ``$NNC_HYPOTHESIS_PROFILE`` names; return its name."""
    settings.register_profile(
        "ci", max_examples=MAX_EXAMPLES["ci"], derandomize=True, deadline=None, database=None,
        suppress_health_check=_SLOW, print_blob=True,
    )
    settings.register_profile(
        "nightly", max_examples=MAX_EXAMPLES["nightly"], deadline=None,
        suppress_health_check=_SLOW, print_blob=True,
    )
    name = os.environ.get(ENV, "ci")
    if name not in MAX_EXAMPLES:
        raise ValueError(f"{ENV}={name!r}: known profiles are {sorted(MAX_EXAMPLES)}")
    settings.load_profile(name)
    if os.environ.get(BASE_ENV):
        settings.register_profile(f"{name}-base", settings(max_examples=int(os.environ[BASE_ENV])))
        settings.load_profile(f"{name}-base")
    return name


def examples(fraction: float) -> int:
    """``fraction`` of the active profile's example budget (at least 1)."""
    return max(1, int(settings().max_examples * fraction))
