"""One module per op family; importing the package registers every converter."""

from . import (
    activation,
    arith,
    conv,
    logic,
    mathops,
    norm,
    pool,
    qdq,
    quantized,
    reduce,
    resize,
    shape,
    slicing,
    smooth,
)

__all__ = ["activation", "arith", "conv", "logic", "mathops", "norm", "pool", "qdq", "quantized", "reduce",
           "resize", "shape", "slicing", "smooth"]
