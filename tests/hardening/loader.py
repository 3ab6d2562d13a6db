"""Feed one (ser_model, weights) pair to torch's real NNAPI runtime on the virtual device; classify."""

from __future__ import annotations

import contextlib
import math
import re
import resource
import time
from collections import Counter
from collections.abc import Iterator, Sequence

import torch

import nnapi_compiler as nc
from nnapi_compiler.backend.ser_model import read_ser_model
from nnapi_compiler.errors import SerModelError
from nnapi_compiler.ir.codes import OperandCode, ResultCode
from nnapi_compiler.runtime.device import VirtualDevice, last_error

MAX_SECONDS = 10.0
MAX_RUN_ELEMENTS = 1 << 20
_CODE = re.compile(r"(?:NNAPI returned error: |failed with error )(-?\d+)")
#: Address space the loader fuzz may use beyond what the process has mapped when it starts: more
#: than the driver's largest allowed operation (driver_limits.MAX_WORK_ELEMENTS, at 8 bytes),
#: far less than the machine has. A bigger allocation then fails fast, and ``feed`` fails the test.
HEADROOM = 6 << 30
_ALLOC_FAILED = re.compile(r"can't allocate memory|bad_alloc|MemoryError")
_DTYPES = {OperandCode.TENSOR_FLOAT32: torch.float32, OperandCode.TENSOR_INT32: torch.int32}


def _mapped_bytes() -> int | None:
    try:
        with open("/proc/self/status") as f:
            return next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith("VmSize:"))
    except (OSError, StopIteration, ValueError):
        return None


@contextlib.contextmanager
def memory_cap(headroom: int = HEADROOM) -> Iterator[int | None]:
    """Cap the address space at what is mapped now plus ``headroom`` (restored on exit), so an
    allocation the driver should have refused fails instead of exhausting the machine."""
    mapped = _mapped_bytes()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = None if mapped is None else mapped + headroom
    if cap is not None and hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    if cap is not None:
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield cap
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _run_once(comp: torch.ScriptObject, dev: VirtualDevice) -> str:
    """Execute an accepted model with zero inputs of its declared types; any clean error is fine."""
    model = dev.finished_models[-1]
    shapes = [[x or 1 for x in model.operands[k].dims] for k in (*model.inputs, *model.outputs)]
    declared = max(math.prod(x or 1 for x in d.dims) for d in model.operands)
    if max(declared, sum(math.prod(s) for s in shapes)) > MAX_RUN_ELEMENTS:
        return "accepted, too large to run"  # e.g. a flipped batch dim of 5e6 rows
    args = [torch.zeros(s, dtype=_DTYPES.get(OperandCode(model.operands[k].code), torch.float32))
            for s, k in zip(shapes, (*model.inputs, *model.outputs), strict=True)]
    n = len(model.inputs)
    try:
        comp.run(args[:n], args[n:])
    except RuntimeError:
        return "accepted, run rejected"
    return "accepted, ran"


def feed(ser: torch.Tensor, weights: Sequence[torch.Tensor], stats: Counter[str]) -> str:
    """Load through ``Compilation.init2`` inside ``virtual_device()`` and check the invariants:

    - the only exception is RuntimeError, within MAX_SECONDS;
    - a failure reported with an NNAPI result code was recorded by the device (``errors``,
      ``last_error()``), and a device rejection always surfaces as such a failure;
    - the driver never hit an internal error (a Python exception turned into a code);
    - no allocation failed: sizes beyond the driver's limits are refused before allocating
      (run under ``memory_cap`` so that a missed one fails here instead of exhausting memory).
    Returns the outcome: "loader", "device", or "accepted, " + "ran" / "run rejected" /
    "too large to run" (a mutated dim can declare a valid model with 5e6-row inputs).
    """
    stats["inputs"] += 1
    with nc.virtual_device() as dev:
        t0 = time.monotonic()
        try:
            comp = torch.classes._nnapi.Compilation()
            comp.init2(ser, list(weights), 1, False)
            outcome = _run_once(comp, dev)
        except RuntimeError as e:
            assert not _ALLOC_FAILED.search(str(e)), f"an allocation failed: {str(e)[:300]}"
            code = _CODE.search(str(e))
            if code:
                assert dev.errors, f"result code {code.group(1)} but the device recorded nothing"
                assert last_error() == dev.errors[-1]
                assert int(code.group(1)) in {int(c) for c in ResultCode} - {0}
                outcome = "device"
            else:
                assert not dev.errors, f"device rejected {dev.errors} but torch said: {e}"
                outcome = "loader"
        elapsed = time.monotonic() - t0
    assert elapsed < MAX_SECONDS, f"took {elapsed:.1f}s"
    assert not [e for e in dev.errors if _ALLOC_FAILED.search(e)], f"an allocation failed: {dev.errors}"
    internal = [e for e in dev.errors if "internal error" in e]
    assert not internal, f"the virtual driver crashed internally: {internal}"
    stats[outcome] += 1
    return outcome


def read_outcome(ser: torch.Tensor | bytes, weights: Sequence[torch.Tensor]) -> str:
    """``read_ser_model`` must parse or raise SerModelError, nothing else."""
    try:
        read_ser_model(ser, weights)
    except SerModelError:
        return "rejected"
    return "parsed"
