"""Hypothesis profiles for the fuzz suite: ``ci`` by default, ``NNC_HYPOTHESIS_PROFILE=nightly``."""

from __future__ import annotations

from .profiles import register

PROFILE = register()
