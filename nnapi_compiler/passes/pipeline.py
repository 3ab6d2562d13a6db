"""The compiler's pass pipeline, in one place, as one ordered list of named steps."""

from __future__ import annotations

from collections.abc import Sequence

from . import (  # noqa: F401 - each module registers its pass
    cleanup,
    fold_bn,
    fold_constants,
    fuse_activation,
    layout,
    legalize,
    reparam,
    requantize_bias,
    upsample,
)
from .base import PassHook, PassManager, parse_pipeline

DEFAULT_PIPELINE = (
    "legalize,requantize-bias,fold-constants,fold-bn,reparameterize,fuse-activation,simplify-reshape,"
    "layout-nhwc,"
    "simplify-upsample,share-constants,dce"
)


def default_pipeline(verify_each: bool = False, text: str = DEFAULT_PIPELINE,
                     hooks: Sequence[PassHook] = ()) -> PassManager:
    """The pipeline as a PassManager; ``hooks`` run after every pass (see ``base.PassHook``)."""
    return PassManager(parse_pipeline(text), verify_each=verify_each, hooks=list(hooks))
