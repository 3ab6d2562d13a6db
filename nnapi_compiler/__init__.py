"""nnapi_compiler: compile PyTorch models to Android NNAPI artifacts for stock PyTorch Mobile."""

from .api import compile, explain
from .compiled import CompiledModel
from .errors import (
    CaptureError,
    ConversionError,
    InputError,
    InternalError,
    NnapiCompilerError,
    NnapiRuntimeError,
    QuantizationError,
    SerModelError,
    UnsupportedError,
    VerificationError,
    VirtualDeviceError,
)
from .runtime.device import virtual_device

__all__ = [
    "CaptureError", "CompiledModel", "ConversionError", "InputError", "InternalError",
    "NnapiCompilerError",
    "NnapiRuntimeError", "QuantizationError", "SerModelError", "UnsupportedError",
    "VerificationError", "VirtualDeviceError", "compile", "explain", "virtual_device",
]
