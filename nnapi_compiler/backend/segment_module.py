"""The TorchScript module that owns one NNAPI segment and runs it through PyTorch Mobile's runtime.

It keeps the runtime's contract (``torch.classes._nnapi.Compilation``: ``init2`` then ``run``)
and the public layout tools rely on: ``ser_model`` (int32 tensor) and ``weights`` (list of
tensors) attributes, as in PyTorch's own NnapiModule. Output buffers are allocated from stored
shapes, not template tensors, so the artifact carries no dead output-sized data.
"""

from typing import Optional

import torch

from .ser_check import check_structure, ser_checksum

# Output kinds (how to allocate an output buffer).
OUT_FLOAT32 = 0
OUT_INT32 = 1
OUT_QUINT8 = 2


class NnapiSegmentModule(torch.nn.Module):
    """Runs one serialized NNAPI model; created uninitialized, compiled on first call."""

    comp: Optional[torch.classes._nnapi.Compilation]  # type: ignore[name-defined]  # noqa: UP045
    weights: list[torch.Tensor]
    out_shapes: list[list[int]]
    out_kinds: list[int]
    out_scales: list[float]
    out_zero_points: list[int]
    ser_checksum: int

    def __init__(
        self,
        ser_model: torch.Tensor,
        weights: list[torch.Tensor],
        out_shapes: list[list[int]],
        out_kinds: list[int],
        out_scales: list[float],
        out_zero_points: list[int],
        preference: int,
        relax_f32_to_f16: bool,
    ) -> None:
        super().__init__()
        self.ser_model = ser_model
        self.ser_checksum = ser_checksum(ser_model)  # checked again on the phone, in init()
        self.weights = weights
        self.out_shapes = out_shapes
        self.out_kinds = out_kinds
        self.out_scales = out_scales
        self.out_zero_points = out_zero_points
        self.preference = preference
        self.relax_f32_to_f16 = relax_f32_to_f16
        self.comp = None

    @torch.jit.export
    def init(self) -> None:
        """Build the NNAPI compilation (raises if NNAPI is unavailable on this device)."""
        # PyTorch's loader trusts the counts, lengths and offsets it reads: a damaged file
        # would make it read out of bounds. Check them here, where an error is catchable.
        sizes = [w.numel() * w.element_size() for w in self.weights]
        problem = check_structure(self.ser_model, sizes)
        if problem != "":
            raise RuntimeError("malformed ser_model: " + problem)
        if ser_checksum(self.ser_model) != self.ser_checksum:
            raise RuntimeError("malformed ser_model: checksum mismatch (the artifact is corrupted)")
        comp = torch.classes._nnapi.Compilation()
        comp.init2(self.ser_model, self.weights, self.preference, self.relax_f32_to_f16)
        self.comp = comp

    @torch.jit.export
    def release(self) -> None:
        """Drop the compilation (e.g. before saving, or to retry after a failure)."""
        self.comp = None

    def _alloc(self, i: int) -> torch.Tensor:
        kind = self.out_kinds[i]
        if kind == 2:
            return torch._empty_affine_quantized(
                self.out_shapes[i], scale=self.out_scales[i],
                zero_point=self.out_zero_points[i], dtype=torch.quint8,
            )
        if kind == 1:
            return torch.empty(self.out_shapes[i], dtype=torch.int32)
        return torch.empty(self.out_shapes[i], dtype=torch.float32)

    def forward(self, args: list[torch.Tensor]) -> list[torch.Tensor]:
        if self.comp is None:
            self.init()
        comp = self.comp
        if comp is None:
            raise RuntimeError("NNAPI compilation was not created")
        outs = [self._alloc(i) for i in range(len(self.out_shapes))]
        comp.run(args, outs)
        return outs

    @torch.jit.export
    def run_sized(self, args: list[torch.Tensor], shapes: list[list[int]]) -> list[torch.Tensor]:
        """``forward`` with the output shapes given (dynamic dims: computed by the wrapper).

        The runtime resizes each output to the dims the device reports after the execution.
        """
        if self.comp is None:
            self.init()
        comp = self.comp
        if comp is None:
            raise RuntimeError("NNAPI compilation was not created")
        outs: list[torch.Tensor] = []
        for i in range(len(shapes)):
            kind = self.out_kinds[i]
            if kind == 2:
                outs.append(torch._empty_affine_quantized(
                    shapes[i], scale=self.out_scales[i], zero_point=self.out_zero_points[i],
                    dtype=torch.quint8))
            elif kind == 1:
                outs.append(torch.empty(shapes[i], dtype=torch.int32))
            else:
                outs.append(torch.empty(shapes[i], dtype=torch.float32))
        comp.run(args, outs)
        return outs
