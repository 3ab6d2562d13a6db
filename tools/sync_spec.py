"""Copy the NNAPI spec tables from ../shared/nnapi into the package (they are data, not code) and
pin their SHA-256 in ``SHA256SUMS`` beside them, which tests check on every machine."""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT.parent / "shared" / "nnapi"
DST = ROOT / "nnapi_compiler" / "ir" / "spec"
TABLES = ("operands.tsv", "operations.tsv")


def sha256sums(folder: Path) -> str:
    """``sha256sum`` format (one ``<hex>  <name>`` line per table)."""
    return "".join(f"{hashlib.sha256((folder / n).read_bytes()).hexdigest()}  {n}\n" for n in TABLES)


def main() -> int:
    if not SRC.is_dir():
        print(f"no spec tables at {SRC}", file=sys.stderr)
        return 1
    for name in TABLES:
        shutil.copyfile(SRC / name, DST / name)
        print(f"copied {name}")
    (DST / "SHA256SUMS").write_text(sha256sums(SRC))
    print("pinned SHA256SUMS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
