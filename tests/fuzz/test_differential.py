"""Differential fuzzing: random valid float models, compiled and run on the virtual device vs eager."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import torch
from hypothesis import given, note, settings
from torch.utils import _pytree as pytree

import nnapi_compiler as nc

from ..conftest import assert_close_scaled
from .profiles import examples
from .strategies import FuzzCase, fuzz_cases

#: File that receives each case before it runs (``NNC_FUZZ_CASE_LOG``), to pin down crashes.
CASE_LOG = os.environ.get("NNC_FUZZ_CASE_LOG", "")
#: File that gets one line per case that matched eager (``NNC_FUZZ_TALLY``): a campaign stopped
#: by a time limit still says how many models it compared, which hypothesis does not.
TALLY = os.environ.get("NNC_FUZZ_TALLY", "")
IDENTITY = re.compile("computes no tensor from its inputs|computes nothing on NNAPI")


def check_case(case: FuzzCase) -> nc.CompiledModel | None:
    """Compile ``case``, run it through torch's NNAPI runtime on the virtual device, compare.

    Returns None for a net that is the identity (every layer a no-op): compile refuses those
    by design (before or after optimization), which is checked here too.
    """
    if CASE_LOG:  # survives a crash of the process, unlike hypothesis' own report
        Path(CASE_LOG).write_text(repr(case))
    net, x = case.build()
    with torch.no_grad():
        ref = net(x.clone())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.script deprecation
            cm = nc.compile(net, (x.clone(),), target=case.target)
    except nc.ConversionError as e:
        leaves = pytree.tree_leaves(ref)
        if IDENTITY.search(str(e)) and all(torch.equal(t, x) for t in leaves):
            return None
        raise
    note(cm.ir())
    with nc.virtual_device():
        got = cm(x.clone())
    assert_close_scaled(got, ref)
    if TALLY:
        with open(TALLY, "a") as f:
            f.write(f"{case.target}\n")
    return cm


@settings(max_examples=examples(5.0))
@given(fuzz_cases())
def test_random_models_match_eager(case: FuzzCase) -> None:
    check_case(case)
