"""IR operations, one module per op family; re-exported here for convenience."""

from .base import Constant, Loc, NnapiOp, Op
from .conv import (
    HW,
    AveragePool2d,
    Conv2d,
    DepthwiseConv2d,
    GroupedConv2d,
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
    Prelu,
    Relu,
    Relu1,
    Relu6,
    Rsqrt,
    Sqrt,
    Sub,
    Tanh,
)
from .host import HostOp
from .linear import FullyConnected
from .quant import Dequantize, Quantize
from .reduce import LogSoftmax, Mean, Softmax
from .resize import ResizeBilinear, ResizeNearest
from .shape import (
    ChannelShuffle,
    Concatenation,
    Gather,
    Pad,
    PadV2,
    Reshape,
    StridedSlice,
    Transpose,
)

__all__ = [
    "HW", "Abs", "Add", "AveragePool2d", "ChannelShuffle", "Concatenation", "Constant", "Conv2d",
    "DepthwiseConv2d", "Dequantize", "Div", "Elu", "Exp", "Floor", "FullyConnected", "Gather",
    "GroupedConv2d",
    "HardSwish", "HostOp", "Loc", "Log", "LogSoftmax", "Logistic", "MaxPool2d", "Maximum", "Mean",
    "Minimum", "Mul", "Neg", "NnapiOp", "Op", "Pad", "PadV2", "Padding", "Prelu", "Quantize", "Relu",
    "Relu1", "Relu6", "Reshape", "ResizeBilinear", "ResizeNearest", "Rsqrt", "Softmax", "Sqrt",
    "StridedSlice", "Sub", "Tanh", "Transpose", "TransposeConv2d",
]
