"""Reference NNAPI semantics (NHWC, torch ops), shared by the virtual device, fold-constants and
the CPU fallback; importing this package registers every kernel."""

from . import (  # noqa: F401  (imported for their @kernel registrations)
    conv,
    elementwise,
    fully_connected,
    logic,
    matmul,
    norm,
    pool,
    quant,
    recurrent,
    reduce,
    resize,
    shape,
    slicing,
)
from .registry import KERNELS, Bound, In, KernelCall, KernelSpec, Sig, kernel

__all__ = ["KERNELS", "Bound", "In", "KernelCall", "KernelSpec", "Sig", "kernel"]
