"""Hypothesis profiles for the hardening suite (the fuzz suite's ``ci`` / ``nightly``)."""

from __future__ import annotations

from ..fuzz.profiles import register

PROFILE = register()
