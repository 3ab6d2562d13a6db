"""FLOP counting as torch.utils.flop_counter does it, plus the CPU attention kernel it misses.

torch's counter knows the CUDA attention kernels but not
``aten._scaled_dot_product_flash_attention_for_cpu``, which is what
``F.scaled_dot_product_attention`` dispatches to on the host; without it an attention model's
matrix products would count as zero and its share of FLOPs on NNAPI would look perfect.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils import flop_counter


def _cpu_sdpa(query_shape: Any, key_shape: Any, value_shape: Any, *_: Any, out_shape: Any = None,
              **__: Any) -> int:
    return flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape)


def _mapping() -> dict[Any, Any]:
    op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    return {op: _cpu_sdpa} if op is not None else {}


def counter() -> flop_counter.FlopCounterMode:
    """A FlopCounterMode (not printing) that also counts host attention."""
    return flop_counter.FlopCounterMode(display=False, custom_mapping=_mapping())
