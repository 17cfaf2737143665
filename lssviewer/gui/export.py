"""Export: catalogs to every writable format, figures to PNG/PDF/SVG, the 3D view to PNG.

The functions here check the target's extension first and raise a one-line
:class:`~lssviewer.errors.LssviewerError` for anything wrong, so the window can show the reason
in a dialog. Catalog writing is delegated to :func:`lssviewer.io.save` (atomic writes), so an
exported catalog is the same file the command line would write. This module does not import Qt.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from lssviewer.catalog import HaloCatalog
from lssviewer.errors import FormatError

#: Figure formats offered for the statistics and likelihood panels.
FIGURE_FORMATS = {".png": "PNG image", ".pdf": "PDF document", ".svg": "SVG drawing"}
#: Image formats for the 3D view.
VIEW_FORMATS = {".png": "PNG image"}


class Screenshotable(Protocol):
    def save_screenshot(self, path: Path) -> None: ...


def catalog_formats() -> list[tuple[str, tuple[str, ...]]]:
    """(description, extensions) of every writable catalog format, as the io registry lists them."""
    from lssviewer import io

    return [(f.description, tuple(f.extensions)) for f in io.writable_formats()]


def readable_formats() -> list[tuple[str, tuple[str, ...]]]:
    """(description, extensions) of every readable catalog format."""
    from lssviewer import io

    return [(f.description, tuple(f.extensions)) for f in io.FORMATS.values() if f.readable]


def qt_filter(formats: Sequence[tuple[str, Sequence[str]]], all_label: str | None = None) -> str:
    """A Qt file-dialog filter string, e.g. ``"HDF5 (*.h5 *.hdf5);;All files (*)"``."""
    parts = [f"{desc} ({' '.join('*' + e for e in exts)})" for desc, exts in formats if exts]
    if all_label:
        every = sorted({e for _, exts in formats for e in exts})
        parts.insert(0, f"{all_label} ({' '.join('*' + e for e in every)})")
    parts.append("All files (*)")
    return ";;".join(parts)


def export_catalog(catalogs: HaloCatalog | Sequence[HaloCatalog], path: str | os.PathLike[str],
                   **options: Any) -> str:
    """Write one or several catalogs to ``path``; the format comes from the extension.

    Returns:
        The name of the format used (see :data:`lssviewer.io.FORMATS`).
    """
    from lssviewer import io

    fmt = io.save(catalogs, path, **options)
    return fmt.name


def _checked_suffix(path: Path, allowed: dict[str, str]) -> str:
    suffix = path.suffix.lower()
    if suffix not in allowed:
        raise FormatError(f"cannot write '{suffix or '(no extension)'}' here "
                          f"(choose {', '.join(allowed)})", path)
    if path.is_dir():
        raise FormatError("is a directory", path)
    return suffix


def export_figure(figure: Any, path: str | os.PathLike[str], dpi: int = 150) -> None:
    """Save a matplotlib Figure as PNG, PDF or SVG (by extension), atomically.

    Args:
        figure: a :class:`matplotlib.figure.Figure` (for example one made by
            :func:`lssviewer.stats.plots.figure`, or a panel's figure).
        path: target file; its extension picks the format.
        dpi: resolution of PNG output in dots per inch.
    """
    from lssviewer.io.atomic import atomic_path

    path = Path(path)
    suffix = _checked_suffix(path, FIGURE_FORMATS)
    try:
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format=suffix[1:], dpi=dpi)
    except OSError as exc:
        raise FormatError(f"cannot write the figure ({exc.strerror or exc})", path) from None


def export_view(view: Screenshotable, path: str | os.PathLike[str]) -> None:
    """Save the 3D view (anything with ``save_screenshot(path)``) as a PNG image."""
    from lssviewer.io.atomic import atomic_path

    path = Path(path)
    _checked_suffix(path, VIEW_FORMATS)
    try:
        with atomic_path(path) as tmp:
            view.save_screenshot(tmp)
    except OSError as exc:
        raise FormatError(f"cannot write the image ({exc.strerror or exc})", path) from None
