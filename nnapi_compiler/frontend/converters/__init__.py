"""One module per op family; importing the package registers every converter."""

from . import (
    activation,
    arith,
    attention,
    conv,
    convert,
    linalg,
    logic,
    mathops,
    norm,
    pool,
    qdq,
    quantized,
    reduce,
    resize,
    sequence,
    shape,
    slicing,
    smooth,
    tile,
)

__all__ = ["activation", "arith", "attention", "conv", "convert", "linalg", "logic", "mathops", "norm",
           "pool", "qdq", "quantized", "reduce", "resize", "sequence", "shape", "slicing", "smooth", "tile"]
