"""The state of one emulated NNAPI device: its settings and what it recorded.

It sits below both the driver, which reads the settings on every call, and ``device``, which
keeps the stack of active devices, so that the runtime's modules only import downwards.
"""

from __future__ import annotations

from collections import Counter

import attrs

from ..ir.codes import feature_level_code
from ..ir.flat import FlatModel

DEVICE_NAME = "nnapi-compiler-virtual"


@attrs.frozen
class CompilationRecord:
    """What one finished compilation asked of the device: the execution preference
    (``Compilation_setPreference``, PREFER_FAST_SINGLE_ANSWER if never called) and whether its
    model allows relaxed float16 computation (``Model_relaxComputationFloat32toFloat16``)."""

    preference: int
    relaxed: bool
    model: FlatModel = attrs.field(eq=False, repr=False)


def api_level(feature_level: int) -> int:
    """What ``ANeuralNetworksDevice_getFeatureLevel`` reports (operands.tsv, FeatureLevelCode).

    FL1..FL5 are Android API levels 27..31; later levels are the constants 1000006.. .
    """
    return feature_level_code(feature_level)


@attrs.define(eq=False)
class VirtualDevice:
    """One emulated NNAPI device; the innermost active ``virtual_device()`` answers every call."""

    feature_level: int = 8
    refuse_ops: frozenset[int] = frozenset()
    available: bool = True
    calls: Counter[str] = attrs.field(factory=Counter)  # C function -> calls while innermost
    errors: list[str] = attrs.field(factory=list)  # every rejected call, oldest first
    finished_models: list[FlatModel] = attrs.field(factory=list)  # as recorded at Model_finish
    compilations: list[CompilationRecord] = attrs.field(factory=list)  # at Compilation_finish

    @property
    def api_level(self) -> int:
        return api_level(self.feature_level)

    @property
    def name(self) -> str:
        return DEVICE_NAME
