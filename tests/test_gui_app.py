"""``lssviewer gui FILE --model DIR`` through the real command line: the window opens, samples, closes."""

from __future__ import annotations

import pytest
from gui_support import tiny_model_dir, toy_suite
from PySide6 import QtCore, QtWidgets

from lssviewer import cli
from lssviewer.gui.main_window import MainWindow

pytestmark = pytest.mark.gui


def test_cli_gui_opens_samples_and_exits(qtbot, tmp_path):
    model = tiny_model_dir(tmp_path / "model", n_halos=200, default_steps=10)
    toy_suite(tmp_path / "suite.h5", n_cosmologies=1, realisations=2, n_halos=200)
    QtCore.QSettings.setPath(QtCore.QSettings.Format.NativeFormat, QtCore.QSettings.Scope.UserScope,
                             str(tmp_path / "config"))
    seen = []

    def close_when_ready() -> None:
        wins = [w for w in QtWidgets.QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        if wins and wins[0].sample_catalog is not None:
            w = wins[0]
            seen.append((len(w.files), len(w.files[0].catalogs), len(w.sample_catalog), w.status_label.text()))
            w.close()
        else:
            QtCore.QTimer.singleShot(100, close_when_ready)

    QtCore.QTimer.singleShot(100, close_when_ready)
    assert cli.main(["gui", str(tmp_path / "suite.h5"), "--model", str(model)]) == 0
    assert seen and seen[0][:3] == (1, 2, 200)
    assert (tmp_path / "config").exists()  # window layout remembered in the (redirected) user settings


def test_cli_gui_without_display_is_a_one_line_error(monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    assert cli.main(["gui"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lssviewer: error: no display") and "\n" not in err
