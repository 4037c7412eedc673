import pathlib

from kerasinit import gains
from kerasinit.initializers._docs import (
    activation_table_markdown,
    which_initializer_markdown,
)

DOC = (
    pathlib.Path(__file__).resolve().parents[2]
    / "docs"
    / "which-initializer.md"
)


def test_committed_table_matches_the_code():
    # Regenerate with `python tools/gen_docs_tables.py`.
    assert DOC.read_text() == which_initializer_markdown()


def test_table_has_one_row_per_activation_with_its_numbers():
    lines = activation_table_markdown().splitlines()
    assert len(lines) == 2 + len(gains.names())
    rows = {
        line.split(" | ")[0].strip("| `").split("`")[0]: line
        for line in lines[2:]
    }
    assert list(rows) == list(gains.names())
    assert "| 1.6667 | pytorch | `Glorot(gain=1.6667)` |" in rows["tanh"]
    assert '`Kumar("sigmoid")` | 12.8000 / fan_in' in rows["sigmoid"]
    assert "`LeCun()` | 1 / fan_in" in rows["selu"]
    assert f"{gains.gain('gelu'):.4f} | second_moment" in rows["gelu"]
