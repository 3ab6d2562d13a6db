"""IR operations, one module per op family; re-exported here for convenience."""

from .base import Constant, Loc, NnapiOp, Op
from .conv import (
    HW,
    AveragePool2d,
    Conv2d,
    DepthwiseConv2d,
    GroupedConv2d,
    L2Pool2d,
    MaxPool2d,
    Padding,
    TransposeConv2d,
)
from .elementwise import (
    Abs,
    Add,
    Div,
    Elu,
    Exp,
    Floor,
    HardSwish,
    Log,
    Logistic,
    Maximum,
    Minimum,
    Mul,
    Neg,
    Pow,
    Prelu,
    Relu,
    Relu1,
    Relu6,
    Rsqrt,
    Sin,
    Sqrt,
    Sub,
    Tanh,
)
from .host import HostOp
from .linear import BatchMatmul, FullyConnected
from .logic import (
    ArgMax,
    ArgMin,
    Cast,
    Equal,
    ExpandDims,
    GatherIndices,
    Greater,
    GreaterEqual,
    Less,
    LessEqual,
    LogicalAnd,
    LogicalNot,
    LogicalOr,
    NotEqual,
    Select,
    TopK,
)
from .quant import Dequantize, Quantize
from .recurrent import SequenceLstm
from .reduce import (
    InstanceNorm,
    LocalResponseNorm,
    LogSoftmax,
    Mean,
    ReduceAll,
    ReduceAny,
    ReduceMax,
    ReduceMin,
    ReduceProd,
    ReduceSum,
    Softmax,
)
from .resize import ResizeBilinear, ResizeNearest
from .shape import (
    ChannelShuffle,
    Concatenation,
    DepthToSpace,
    Gather,
    Pad,
    PadV2,
    Reshape,
    SpaceToDepth,
    StridedSlice,
    Tile,
    Transpose,
)


def op_classes() -> list[type[Op]]:
    """Every concrete op class (one that names its own mnemonic), found through the hierarchy.

    Tables about ops (mnemonics for the parser, op codes with a layout flag) are derived from
    this, so declaring an op class in its family module is all that adding an op takes.
    """
    out: list[type[Op]] = []
    stack: list[type] = [Op]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        # attrs' slotted classes replace the class they decorate; only the final one counts.
        if "__attrs_attrs__" in vars(cls) and "mnemonic" in vars(cls):
            out.append(cls)
    return sorted(out, key=lambda c: c.mnemonic)


#: NNAPI op codes whose first BOOL operand is the layout flag (true = NCHW), from the op classes.
LAYOUT_FLAG_CODES = frozenset(
    c.code for c in op_classes() if c.nchw_flag and issubclass(c, NnapiOp)
)

__all__ = [
    "HW",
    "LAYOUT_FLAG_CODES",
    "Abs",
    "Add",
    "ArgMax",
    "ArgMin",
    "AveragePool2d",
    "BatchMatmul",
    "Cast",
    "ChannelShuffle",
    "Concatenation",
    "Constant",
    "Conv2d",
    "DepthToSpace",
    "DepthwiseConv2d",
    "Dequantize",
    "Div",
    "Elu",
    "Equal",
    "Exp",
    "ExpandDims",
    "Floor",
    "FullyConnected",
    "Gather",
    "GatherIndices",
    "Greater",
    "GreaterEqual",
    "GroupedConv2d",
    "HardSwish",
    "HostOp",
    "InstanceNorm",
    "L2Pool2d",
    "Less",
    "LessEqual",
    "Loc",
    "LocalResponseNorm",
    "Log",
    "LogSoftmax",
    "LogicalAnd",
    "LogicalNot",
    "LogicalOr",
    "Logistic",
    "MaxPool2d",
    "Maximum",
    "Mean",
    "Minimum",
    "Mul",
    "Neg",
    "NnapiOp",
    "NotEqual",
    "Op",
    "Pad",
    "PadV2",
    "Padding",
    "Pow",
    "Prelu",
    "Quantize",
    "ReduceAll",
    "ReduceAny",
    "ReduceMax",
    "ReduceMin",
    "ReduceProd",
    "ReduceSum",
    "Relu",
    "Relu1",
    "Relu6",
    "Reshape",
    "ResizeBilinear",
    "ResizeNearest",
    "Rsqrt",
    "Select",
    "SequenceLstm",
    "Sin",
    "Softmax",
    "SpaceToDepth",
    "Sqrt",
    "StridedSlice",
    "Sub",
    "Tanh",
    "Tile",
    "TopK",
    "Transpose",
    "TransposeConv2d",
    "op_classes",
]
