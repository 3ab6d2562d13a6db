"""Copy the NNAPI spec tables from ../shared/nnapi into the package (they are data, not code)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT.parent / "shared" / "nnapi"
DST = ROOT / "nnapi_compiler" / "ir" / "spec"


def main() -> int:
    if not SRC.is_dir():
        print(f"no spec tables at {SRC}", file=sys.stderr)
        return 1
    for name in ("operations.tsv", "operands.tsv"):
        shutil.copyfile(SRC / name, DST / name)
        print(f"copied {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
