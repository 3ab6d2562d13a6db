"""The compiler's pass pipeline, in one place, as one ordered list of named steps."""

from __future__ import annotations

from .base import PassManager, parse_pipeline
from .legalize import Legalize  # noqa: F401 - registers the pass

DEFAULT_PIPELINE = "legalize"


def default_pipeline(verify_each: bool = False, text: str = DEFAULT_PIPELINE) -> PassManager:
    return PassManager(parse_pipeline(text), verify_each=verify_each)
