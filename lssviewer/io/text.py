"""Shared helpers for text formats: strict UTF-8 reading and numeric table parsing."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from lssviewer.errors import FormatError


def read_text(path: Path) -> str:
    """The whole file as UTF-8 text; binary content (NUL bytes) or invalid UTF-8 is a FormatError."""
    data = Path(path).read_bytes()
    if b"\x00" in data[:65536]:
        raise FormatError("binary content in a text format (NUL bytes)", path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"not valid UTF-8 text (bad byte at offset {exc.start})", path) from None


def parse_table(lines: list[str], n_columns: int, path: Path, first_line_no: int = 1,
                delimiter: str | None = None) -> np.ndarray:
    """Parse numeric rows into an (n_rows, n_columns) float64 array with a clear error on the first bad row."""
    if not lines:
        return np.zeros((0, n_columns))
    try:
        arr = np.loadtxt(io.StringIO("\n".join(lines)), dtype=np.float64, delimiter=delimiter, ndmin=2)
    except ValueError:
        arr = None
    if arr is None or arr.shape[1] != n_columns:
        for i, line in enumerate(lines):
            fields = line.split(delimiter) if delimiter else line.split()
            if len(fields) != n_columns:
                raise FormatError(f"line {first_line_no + i}: expected {n_columns} columns, got {len(fields)}",
                                  path)
            try:
                [float(x) for x in fields]
            except ValueError:
                raise FormatError(f"line {first_line_no + i}: not a number in {line.strip()[:60]!r}",
                                  path) from None
        raise FormatError("malformed numeric table", path)
    return arr


def is_probably_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start > len(head) - 4  # a multi-byte character cut by the read size
    return True
