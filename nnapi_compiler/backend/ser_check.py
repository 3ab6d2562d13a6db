"""TorchScript checks of a ser_model before torch's loader reads it: structure, buffer bounds, checksum.

PyTorch's loader (``nnapi_model_loader.cpp``) trusts the counts and lengths it reads: negative
counts read before the buffer, a buffer offset plus length that wraps around 32 bits passes its
bounds check, and a model shorter than its counts claim is read past its end. On the phone that
is an out-of-bounds read in libtorch, which no TorchScript can catch. These functions run inside
the artifact (``NnapiSegmentModule.init``) and walk the same records the loader walks, so a
truncated or corrupted ``.ptl`` fails with a clear RuntimeError first. They are scripted into the
artifact, so they use only what TorchScript compiles.
"""

from typing import List  # noqa: UP035 - TorchScript needs typing.List in older releases

import torch

# TorchScript cannot read module-level ints, so the constants are literals: 16777216 = 2**24 is
# the loader's own sanity limit on every count; 2147483647 = 2**31 - 1 (a prime) the checksum's
# modulus.
MAX_COUNT = 16777216


def ser_checksum(ser_model: torch.Tensor) -> int:
    """Position-weighted sum of the 32-bit words modulo 2**31 - 1, folded with their plain sum.

    Any change of one word, and any swap or truncation, changes it (unless a word changes by a
    multiple of the modulus). It guards against corruption, not against tampering.
    """
    words = ser_model.reshape(-1).to(torch.int64) & 4294967295
    n = words.numel()
    weights = torch.arange(1, n + 1, dtype=torch.int64) % 2147483647
    weighted = int(((words % 2147483647) * weights % 2147483647).sum()) % 2147483647
    plain = int((words % 2147483647).sum()) % 2147483647
    return (weighted * 2147483648 + plain) ^ n


def _u32(x: int) -> int:
    return x & 4294967295


def check_structure(ser_model: torch.Tensor, weight_bytes: List[int]) -> str:  # noqa: UP006
    """"" if every count, length, index and buffer reference is in range, else what is wrong."""
    if ser_model.dim() != 1 or ser_model.dtype != torch.int32:
        return "ser_model must be a 1-d int32 tensor"
    w: List[int] = ser_model.to(torch.int64).tolist()  # noqa: UP006
    n = len(w)
    if n < 6 or w[0] != 1:
        return "bad header or version"
    for c in w[1:6]:
        if c < 0 or c >= 16777216:
            return "header counts out of range"
    n_opd, n_val, n_op, n_in, n_out = w[1], w[2], w[3], w[4], w[5]
    pos = 6
    records = pos + 4 * n_opd + 3 * n_val + 3 * n_op
    if records > n:
        return "truncated in the operand, value or operation records"
    dims = 0
    for i in range(n_opd):
        dim_count = _u32(w[pos + 4 * i + 1])
        if dim_count > 8:
            return "operand " + str(i) + " has " + str(dim_count) + " dims"
        dims += dim_count
    pos = records + dims
    for i in range(n_val):
        at = 6 + 4 * n_opd + 3 * i
        idx, source, length = w[at], w[at + 1], _u32(w[at + 2])
        if idx < 0 or idx >= n_opd:
            return "value " + str(i) + " names operand " + str(idx)
        words = (length + 3) // 4
        if pos + words > n:
            return "value " + str(i) + " payload runs past the end"
        if source == 2:
            if length != 12:
                return "value " + str(i) + ": a buffer reference must be 12 bytes"
            buf, offset, size = _u32(w[pos]), _u32(w[pos + 1]), _u32(w[pos + 2])
            if buf >= len(weight_bytes) or offset + size > weight_bytes[buf]:
                return "value " + str(i) + " reads past weight buffer " + str(buf)
        elif source != 0:
            return "value " + str(i) + " has unknown source " + str(source)
        pos += words
    op_at = 6 + 4 * n_opd + 3 * n_val
    for i in range(n_op):
        n_i, n_o = _u32(w[op_at + 3 * i + 1]), _u32(w[op_at + 3 * i + 2])
        if n_i >= 16777216 or n_o >= 16777216 or pos + n_i + n_o > n:
            return "operation " + str(i) + " operand lists run past the end"
        for k in w[pos : pos + n_i + n_o]:
            if _u32(k) >= n_opd:
                return "operation " + str(i) + " names operand " + str(_u32(k))
        pos += n_i + n_o
    if pos + n_in + n_out != n:
        return "size " + str(4 * n) + " bytes does not match its records"
    for k in w[pos:]:
        if _u32(k) >= n_opd:
            return "a model input or output names operand " + str(_u32(k))
    return ""
