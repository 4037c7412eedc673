"""Regenerate docs/which-initializer.md from kerasinit/gains.py.

Usage: ``python tools/gen_docs_tables.py`` (``--check`` exits 1 instead of
writing when the file is out of date).
"""

from __future__ import annotations

import argparse
import pathlib
import sys

from kerasinit.initializers._docs import which_initializer_markdown

TARGET = (
    pathlib.Path(__file__).resolve().parent.parent
    / "docs"
    / "which-initializer.md"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    text = which_initializer_markdown()
    if args.check:
        current = TARGET.read_text() if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET} is out of date; run {sys.argv[0]}")
            return 1
        return 0
    TARGET.write_text(text)
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
