"""PT2E quantization for NNAPI: ``NnapiQuantizer`` for torchao's prepare_pt2e / prepare_qat_pt2e."""

from .quantizer import NnapiQuantizer

__all__ = ["NnapiQuantizer"]
