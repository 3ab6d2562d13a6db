"""The compiler's pass pipeline, in one place, as one ordered list of named steps."""

from __future__ import annotations

from . import cleanup, fold_bn, fuse_activation, layout, legalize, upsample  # noqa: F401
from .base import PassManager, parse_pipeline

DEFAULT_PIPELINE = (
    "legalize,fold-bn,fuse-activation,simplify-reshape,layout-nhwc,simplify-upsample,"
    "share-constants,dce"
)


def default_pipeline(verify_each: bool = False, text: str = DEFAULT_PIPELINE) -> PassManager:
    return PassManager(parse_pipeline(text), verify_each=verify_each)
