"""Reference NNAPI kernels (NHWC, torch ops); importing this package registers every kernel."""

from . import (  # noqa: F401  (imported for their @kernel registrations)
    conv,
    elementwise,
    fully_connected,
    pool,
    quant,
    reduce,
    resize,
    shape,
    slicing,
)
from .registry import KERNELS, KernelCall, KernelSpec, Sig, kernel

__all__ = ["KERNELS", "KernelCall", "KernelSpec", "Sig", "kernel"]
