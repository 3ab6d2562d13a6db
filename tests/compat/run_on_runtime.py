"""Run saved artifacts on the torch of the interpreter running this script (tests/compat runs
it with torch 2.1 from tools/compat_env.py), through the virtual NNAPI device.

    python run_on_runtime.py MANIFEST.json RESULTS.pt

Each manifest case names a ``.ptl``, its inputs (a ``torch.save``d list of tensors), the device's
feature level and whether to call ``use_cpu()`` first, as an app does when NNAPI fails. Imports
only torch and ``nnapi_compiler.runtime``: this is what an app's runtime and the host device need.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

import torch
from torch.jit.mobile import _load_for_lite_interpreter

from nnapi_compiler.runtime.device import virtual_device


def run_case(case: dict) -> dict:
    inputs = torch.load(case["inputs"])
    with virtual_device(feature_level=case["level"]) as dev:
        module = _load_for_lite_interpreter(case["ptl"])
        if case["cpu"]:
            module.run_method("use_cpu")
        out = module(*inputs)
    return {
        "out": out,
        "calls": dict(dev.calls),
        "errors": list(dev.errors),
        "compilations": [(c.preference, c.relaxed) for c in dev.compilations],
    }


def main() -> None:
    manifest, results_path = sys.argv[1], sys.argv[2]
    results: dict = {"torch": torch.__version__, "cases": {}}
    for case in json.loads(Path(manifest).read_text()):
        try:
            results["cases"][case["name"]] = run_case(case)
        except Exception:  # report every case, not just the first failure
            results["cases"][case["name"]] = {"error": traceback.format_exc()}
    results["modules"] = sorted(m for m in sys.modules if m.startswith("nnapi_compiler"))
    torch.save(results, results_path)


if __name__ == "__main__":
    main()
