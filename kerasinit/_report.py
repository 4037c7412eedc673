"""The shared shape of kerasinit's per-layer reports (`pair`, `lsuv`)."""

from __future__ import annotations

from typing import Any


class Report:
    """Rows of per-layer results: a sequence that prints as a table.

    Rows can be looked up by position or by layer name. Subclasses name the
    table's columns in `_header` and turn one row into its cells in `_cells`.
    """

    _header: tuple[str, ...] = ()
    _noun = "rows"

    def __init__(self, rows: list[Any]) -> None:
        self.rows = list(rows)

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: int | str) -> Any:
        if isinstance(key, str):
            for row in self.rows:
                if row.layer == key:
                    return row
            raise KeyError(key)
        return self.rows[key]

    def to_list(self) -> list[dict]:
        """The rows as plain dicts (JSON-safe)."""
        return [row.to_dict() for row in self.rows]

    def _cells(self, row: Any) -> tuple[str, ...]:
        raise NotImplementedError

    def __str__(self) -> str:
        lines = [self._cells(row) for row in self.rows]
        widths = [
            max([len(h)] + [len(line[i]) for line in lines])
            for i, h in enumerate(self._header)
        ]

        def fmt(cells):
            return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

        return "\n".join(
            [fmt(self._header), fmt(["-" * w for w in widths])]
            + [fmt(line) for line in lines]
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self.rows)} {self._noun})"
