"""nnapi_compiler: compile PyTorch models to Android NNAPI artifacts for stock PyTorch Mobile."""

from .errors import NnapiCompilerError

__all__ = ["NnapiCompilerError"]
