"""Start the desktop app: ``run_app(files=None, model=None) -> exit status``.

With no files the demo suite (``resources/demo/demo_suite.h5``) is opened and the built-in model
(``resources/models/default``) is loaded; when either is missing the window still opens and says
so in the status bar.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from lssviewer.errors import LssviewerError


def default_demo_files() -> list[Path]:
    """The demo suite (it may be missing: the window then says so in its status bar)."""
    from lssviewer.resources import demo_suite_path

    return [Path(demo_suite_path())]


def _check_display() -> None:
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        if os.environ.get("QT_QPA_PLATFORM", "") in ("", "xcb", "wayland"):
            raise LssviewerError("no display (DISPLAY is not set): run the app on a desktop, or under a "
                                 "virtual display with 'xvfb-run -a lssviewer'")


def run_app(files: Sequence[str] | None = None, model: str | None = None) -> int:
    """Open the main window and run the Qt event loop until it closes; returns the exit status."""
    _check_display()
    from PySide6 import QtGui, QtWidgets

    from lssviewer.gui.main_window import MainWindow
    from lssviewer.resources import resource_path

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setOrganizationName("lssviewer")
    app.setApplicationName("lssviewer")
    app.setDesktopFileName("lssviewer")  # matches resources/lssviewer.desktop
    icon = resource_path("icon", "lssviewer-256.png")
    if icon.is_file():
        app.setWindowIcon(QtGui.QIcon(str(icon)))
    window = MainWindow(model_path=model)
    window.show()
    window.start(files=list(files or []), default_files=default_demo_files())
    return int(app.exec())
