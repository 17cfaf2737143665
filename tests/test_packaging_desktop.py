"""The desktop entry and the icon that the packaged app and ``install-desktop-entry.sh`` install."""

from __future__ import annotations

import configparser
import importlib.util
import struct
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ICON_DIR = REPO / "resources" / "icon"
DESKTOP = REPO / "resources" / "lssviewer.desktop"


def _make_icon():
    spec = importlib.util.spec_from_file_location("make_icon", REPO / "packaging" / "make_icon.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_desktop_entry_follows_the_spec_and_names_the_shipped_icon():
    """Keys required by the freedesktop Desktop Entry spec are there; Exec runs the lssviewer command with
    files (%F); the Icon name matches the icon files installed into the hicolor theme."""
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # keys are case-sensitive
    parser.read_string(DESKTOP.read_text(encoding="utf-8"))
    entry = parser["Desktop Entry"]
    assert entry["Type"] == "Application"
    assert entry["Name"] and entry["Comment"]
    assert entry["Exec"].split()[0] == "lssviewer" and entry["Exec"].endswith("%F")
    assert entry["Terminal"] == "false"
    assert entry["Categories"].endswith(";") and "Science" in entry["Categories"].split(";")
    assert (ICON_DIR / f"{entry['Icon']}.svg").is_file() and (ICON_DIR / f"{entry['Icon']}.png").is_file()


def test_icon_files_are_what_make_icon_draws():
    """The committed SVG is exactly what packaging/make_icon.py draws (deterministic), every sized PNG has
    its stated size, and the .ico directory lists PNG images of the sizes Windows uses."""
    mk = _make_icon()
    assert (ICON_DIR / "lssviewer.svg").read_text() == mk.svg_text()
    for size in mk.SIZES:
        assert _png_size((ICON_DIR / f"lssviewer-{size}.png").read_bytes()) == (size, size)
    assert _png_size((ICON_DIR / "lssviewer.png").read_bytes()) == (256, 256)
    ico = (ICON_DIR / "lssviewer.ico").read_bytes()
    reserved, kind, count = struct.unpack("<HHH", ico[:6])
    assert (reserved, kind) == (0, 1) and count == len([s for s in mk.SIZES if s <= 256])
    for i in range(count):
        w, h, _, _, _, _, length, offset = struct.unpack("<BBBBHHII", ico[6 + 16 * i: 22 + 16 * i])
        size = w or 256  # 0 means 256 in the ICO directory
        assert w == h and _png_size(ico[offset: offset + length]) == (size, size)


def test_install_desktop_entry_writes_entry_and_icons(tmp_path):
    """packaging/install_desktop_entry.sh (run from the checkout with an explicit launcher) writes the entry
    with Exec pointing at that launcher and the icons into the hicolor theme; --uninstall removes them."""
    launcher = tmp_path / "bin" / "lssviewer"
    launcher.parent.mkdir()
    launcher.write_text("#!/bin/sh\nexit 0\n")
    launcher.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "share")}
    script = REPO / "packaging" / "install_desktop_entry.sh"
    proc = subprocess.run(["bash", str(script), str(launcher)], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    entry = (tmp_path / "share" / "applications" / "lssviewer.desktop").read_text()
    assert f'Exec="{launcher}" gui %F' in entry and f"TryExec={launcher}" in entry
    icons = tmp_path / "share" / "icons" / "hicolor"
    assert (icons / "scalable" / "apps" / "lssviewer.svg").is_file()
    assert _png_size((icons / "48x48" / "apps" / "lssviewer.png").read_bytes()) == (48, 48)
    proc = subprocess.run(["bash", str(script), "--uninstall"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "share" / "applications" / "lssviewer.desktop").exists()
    assert not (icons / "48x48" / "apps" / "lssviewer.png").exists()
