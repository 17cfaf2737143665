"""Draw the lssviewer icon: ``resources/icon/lssviewer.svg`` and PNGs rendered from it.

The picture: a periodic simulation box (isometric cube) holding a small cosmic web, i.e. filaments
between a few massive nodes with halos strung along them, drawn larger and warmer the more massive.
Everything is deterministic (fixed node positions, seeded random halos), so re-running the script
reproduces the same files byte for byte apart from PNG encoder differences between Qt versions.

    python packaging/make_icon.py            # writes resources/icon/lssviewer.svg, lssviewer-{16..512}.png,
                                             # lssviewer.png (256 px) and lssviewer.ico (Windows)

The PNGs are rendered with Qt's SVG renderer (QtSvg, part of pyside6-essentials) on the offscreen
platform, so no display is needed.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "resources" / "icon"
SIZES = (16, 32, 48, 64, 128, 256, 512)
VIEW = 256.0  # SVG user units


def _iso(x: float, y: float, z: float) -> tuple[float, float]:
    """Isometric projection of box coordinates in [0, 1]^3 onto the 256 x 256 canvas."""
    c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
    scale = 92.0
    u = (x - y) * c * scale
    v = (x + y) * s * scale - z * scale
    return 128.0 + u, 136.0 + v


def _colour(t: float) -> str:
    """Halo colour from cool (t = 0, small) to warm (t = 1, massive)."""
    stops = [(0.0, (110, 190, 255)), (0.5, (255, 236, 170)), (1.0, (255, 140, 60))]
    for (t0, c0), (t1, c1) in zip(stops[:-1], stops[1:], strict=True):
        if t <= t1:
            f = (t - t0) / (t1 - t0)
            r, g, b = (round(a + f * (b_ - a)) for a, b_ in zip(c0, c1, strict=True))
            return f"#{r:02x}{g:02x}{b:02x}"
    return "#ff8c3c"


def svg_text(seed: int = 7) -> str:
    """The icon as SVG source (256 x 256 user units)."""
    rng = np.random.default_rng(seed)
    parts = [
        '<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256" viewBox="0 0 256 256">',
        "<defs>",
        '<radialGradient id="bg" cx="50%" cy="42%" r="70%">'
        '<stop offset="0" stop-color="#24346e"/><stop offset="1" stop-color="#070a1c"/></radialGradient>',
        '<radialGradient id="glow" cx="50%" cy="50%" r="50%">'
        '<stop offset="0" stop-color="#ffffff" stop-opacity="0.9"/>'
        '<stop offset="1" stop-color="#ffffff" stop-opacity="0"/></radialGradient>',
        "</defs>",
        '<rect x="8" y="8" width="240" height="240" rx="44" ry="44" fill="url(#bg)"/>',
    ]
    # The box: back edges faint, front edges brighter.
    corners = {(i, j, k): _iso(i, j, k) for i in (0, 1) for j in (0, 1) for k in (0, 1)}
    edges = [((0, 0, 0), (1, 0, 0)), ((0, 0, 0), (0, 1, 0)), ((0, 0, 0), (0, 0, 1)),
             ((1, 1, 1), (0, 1, 1)), ((1, 1, 1), (1, 0, 1)), ((1, 1, 1), (1, 1, 0)),
             ((1, 0, 0), (1, 1, 0)), ((1, 0, 0), (1, 0, 1)), ((0, 1, 0), (1, 1, 0)),
             ((0, 1, 0), (0, 1, 1)), ((0, 0, 1), (1, 0, 1)), ((0, 0, 1), (0, 1, 1))]
    for a, b in edges:
        back = (0, 0, 0) in (a, b)
        (x0, y0), (x1, y1) = corners[a], corners[b]
        parts.append(f'<line x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" y2="{y1:.1f}" stroke="#9fb4ff" '
                     f'stroke-opacity="{0.25 if back else 0.55}" stroke-width="2.2" stroke-linecap="round"/>')
    # The web: massive nodes and the filaments joining them.
    nodes = np.array([[0.15, 0.55, 0.80], [0.80, 0.15, 0.72], [0.85, 0.85, 0.85], [0.20, 0.80, 0.15],
                      [0.75, 0.60, 0.12], [0.45, 0.40, 0.45]])
    links = [(0, 5), (1, 5), (2, 5), (3, 5), (4, 5), (0, 3), (1, 4), (2, 4), (0, 2)]
    halos = []  # (x, y, z, mass in [0, 1])
    for a, b in links:
        pa, pb = nodes[a], nodes[b]
        (x0, y0), (x1, y1) = _iso(*pa), _iso(*pb)
        parts.append(f'<line x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" y2="{y1:.1f}" stroke="#8ec8ff" '
                     'stroke-opacity="0.35" stroke-width="3" stroke-linecap="round"/>')
        for t in rng.uniform(0.12, 0.88, 5):
            p = pa + t * (pb - pa) + rng.normal(0.0, 0.025, 3)
            halos.append((*np.clip(p, 0.02, 0.98), float(rng.uniform(0.0, 0.45))))
    for p in nodes:
        halos.append((*p, float(rng.uniform(0.75, 1.0))))
    # Draw back to front (larger x + y + z is nearer the viewer in this projection).
    for x, y, z, m in sorted(halos, key=lambda h: h[0] + h[1] - h[2]):
        u, v = _iso(x, y, z)
        r = 2.5 + 7.5 * m**1.5
        if m > 0.7:
            parts.append(f'<circle cx="{u:.1f}" cy="{v:.1f}" r="{2.6 * r:.1f}" fill="url(#glow)" '
                         'fill-opacity="0.35"/>')
        parts.append(f'<circle cx="{u:.1f}" cy="{v:.1f}" r="{r:.1f}" fill="{_colour(m)}"/>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def render_png(svg: bytes, size: int, path: Path) -> None:
    """Render the SVG to a ``size`` x ``size`` PNG with QtSvg."""
    from PySide6 import QtCore, QtGui, QtSvg

    renderer = QtSvg.QSvgRenderer(QtCore.QByteArray(svg))
    if not renderer.isValid():
        raise RuntimeError("the icon SVG does not parse")
    image = QtGui.QImage(size, size, QtGui.QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(QtCore.Qt.GlobalColor.transparent)
    painter = QtGui.QPainter(image)
    painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    if not image.save(str(path), "PNG"):
        raise OSError(f"could not write {path}")


def write_ico(pngs: dict[int, bytes], path: Path) -> None:
    """A Windows .ico holding PNG-compressed images (the format Windows Vista+ reads)."""
    sizes = sorted(s for s in pngs if s <= 256)
    header = (0).to_bytes(2, "little") + (1).to_bytes(2, "little") + len(sizes).to_bytes(2, "little")
    entries, blobs = b"", b""
    offset = 6 + 16 * len(sizes)
    for s in sizes:
        data = pngs[s]
        entries += bytes([s % 256, s % 256, 0, 0]) + (1).to_bytes(2, "little") + (32).to_bytes(2, "little")
        entries += len(data).to_bytes(4, "little") + offset.to_bytes(4, "little")
        blobs += data
        offset += len(data)
    path.write_bytes(header + entries + blobs)


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6 import QtGui

    _app = QtGui.QGuiApplication.instance() or QtGui.QGuiApplication(sys.argv[:1])  # noqa: F841 - keeps Qt up
    OUT.mkdir(parents=True, exist_ok=True)
    svg = svg_text()
    (OUT / "lssviewer.svg").write_text(svg)
    pngs = {}
    for size in SIZES:
        path = OUT / f"lssviewer-{size}.png"
        render_png(svg.encode(), size, path)
        pngs[size] = path.read_bytes()
    (OUT / "lssviewer.png").write_bytes(pngs[256])
    write_ico(pngs, OUT / "lssviewer.ico")
    print(f"wrote {OUT}/lssviewer.svg, lssviewer.png, lssviewer.ico and {len(SIZES)} sized PNGs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
