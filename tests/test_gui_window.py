"""The main window under a virtual display (pytest-xvfb, xcb platform; never 'offscreen').

Uses the real io, model (a tiny untrained checkpoint from tests/gui_support.py) and stats code.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from gui_support import grab_stats, tiny_model_dir, toy_suite
from PySide6 import QtCore, QtGui, QtWidgets

from lssviewer import io
from lssviewer.gui.main_window import MainWindow

pytestmark = pytest.mark.gui
N_HALOS = 300


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("gui")
    model = tiny_model_dir(root / "model", n_halos=N_HALOS, default_steps=20)
    cats = toy_suite(root / "suite.h5", n_cosmologies=2, realisations=2, n_halos=N_HALOS)
    return {"root": root, "model": model, "suite": root / "suite.h5", "cats": cats}


def make_window(qtbot, tmp_path, model, files=(), default_files=(), **kwargs) -> MainWindow:
    settings = QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat)
    win = MainWindow(model_path=str(model) if model else None, settings=settings, **kwargs)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    win.start(files=[str(f) for f in files], default_files=list(default_files))
    return win


@pytest.fixture
def window(qtbot, tmp_path, assets):
    win = make_window(qtbot, tmp_path, assets["model"])
    with qtbot.waitSignal(win.sample_displayed, timeout=60_000):
        win.open_files([str(assets["suite"])])
    yield win
    win.close()


def test_launch_move_slider_new_sample_changes_pixels(qtbot, window):
    first = window.sample_catalog
    assert first is not None and len(first) == N_HALOS
    before = window.view.grab_array()
    distinct, brightness = grab_stats(before)
    # a blank (offscreen-platform) view is one or two colours; ours has a gradient, boxes and sprites
    assert distinct > 100 and brightness > 5
    with qtbot.waitSignal(window.sample_displayed, timeout=60_000) as sig:
        window.controls.omega_m.slider.setValue(0.45)  # like typing 0.45 into the slider's number box
    assert sig.args[0].omega_m == pytest.approx(0.45)
    after = window.view.grab_array()
    changed = np.mean(np.any(before != after, axis=2))
    assert changed > 0.002  # the halos moved: well over 0.2 % of the pixels differ


def test_window_never_freezes_during_sample_and_scan(qtbot, tmp_path, assets):
    # a model slow enough that sampling and scanning take ~1 s each on 2 cores
    model = tiny_model_dir(tmp_path / "slow", n_halos=N_HALOS, d_model=64, n_layers=2, default_steps=250)
    win = make_window(qtbot, tmp_path, model, files=[assets["suite"]])
    qtbot.waitSignal(win.sample_displayed, timeout=60_000).wait()
    qtbot.waitUntil(lambda: win.warmed_up, timeout=60_000)  # first-time imports done, as in a real session
    ticks: list[float] = []
    timer = QtCore.QTimer(interval=10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))

    def max_gap_during(start, signal) -> tuple[float, float]:
        ticks.clear()
        timer.start()
        t0 = time.perf_counter()
        with qtbot.waitSignal(signal, timeout=120_000):
            start()
        timer.stop()
        return float(np.max(np.diff(ticks))), time.perf_counter() - t0

    gap_sample, t_sample = max_gap_during(win.request_sample, win.sample_displayed)
    win.likelihood_panel.points.setValue(15)
    win.likelihood_panel.noise.setValue(8)
    win.likelihood_dock.raise_()  # the panel is on screen, as when a user presses its Run button
    qtbot.wait(300)
    gap_scan, t_scan = max_gap_during(win.request_scan, win.scan_finished)
    win.close()
    assert t_sample > 0.3 and t_scan > 0.3, "the work must last long enough for the check to mean something"
    assert gap_sample < 0.100, f"GUI froze {gap_sample * 1e3:.0f} ms during a {t_sample:.1f} s sample"
    assert gap_scan < 0.100, f"GUI froze {gap_scan * 1e3:.0f} ms during a {t_scan:.1f} s scan"


def test_open_real_rockstar_file(qtbot, window, rockstar_path):
    expected = io.load(rockstar_path)
    assert window.open_files([str(rockstar_path)]) == [str(rockstar_path.resolve())]
    top = window.catalog_tree.topLevelItem(len(window.files) - 1)
    assert top.text(0) == rockstar_path.name and top.childCount() == len(expected)
    shown = window.selected_catalog()
    assert len(shown) == len(expected[0]) and shown.box_size == expected[0].box_size
    assert window.view.catalog("simulation") is shown
    assert window.error_dialog is None


def test_bad_file_gives_dialog_and_changes_nothing(qtbot, window, tmp_path):
    bad = tmp_path / "broken.h5"
    bad.write_bytes(b"this is not HDF5 at all\n" * 10)
    files_before = [f.path for f in window.files]
    selected_before = window.selected_catalog()
    assert window.open_files([str(bad)]) == []
    box = window.error_dialog
    assert box is not None and box.isVisible()
    assert str(bad) in box.text() and "\n" not in box.text()
    assert [f.path for f in window.files] == files_before and window.selected_catalog() is selected_before
    box.close()
    # and the window keeps working
    with qtbot.waitSignal(window.sample_displayed, timeout=60_000):
        window.request_sample()


def test_scan_streams_points_and_summarises(qtbot, window):
    window.select_catalog(0, 2)  # toy c1 r0: Omega_m = 0.3, sigma_8 = 0.8, 300 halos like the model
    counts = []
    window.worker.progress.connect(lambda rid, kind, p: counts.append(len(window.likelihood_panel.points_received))
                                   if kind == "scan" else None)
    window.likelihood_panel.points.setValue(5)
    window.likelihood_panel.noise.setValue(2)
    with qtbot.waitSignal(window.scan_finished, timeout=60_000) as sig:
        window.request_scan()
    qtbot.waitUntil(lambda: window.likelihood_panel.shown == (5, True), timeout=10_000)  # final picture
    assert len(sig.args[0]["points"]) == 5
    assert counts[:5] == [1, 2, 3, 4, 5] or sorted(set(counts)) == [1, 2, 3, 4, 5]  # points arrived one by one
    panel = window.likelihood_panel
    assert panel.summary is not None and 0.1 <= panel.summary["map"] <= 0.5
    with panel.figure_lock:
        ax = panel.figure.axes[0]
        assert len(ax.lines) >= 2 and "MAP" in panel.message.text()
    assert "given σ8 = 0.8 (its true value" in panel.message.text()
    assert not panel.view.pixmap().isNull()


def test_zoomed_2d_scan_streams_its_stages(qtbot, window):
    """The default 2-D scan: a coarse 7 x 7 grid over the prior, then windows around the peak; the panel shows
    each stage as it comes and summarises the last one."""
    window.select_catalog(0, 2)
    panel = window.likelihood_panel
    panel.mode.setCurrentIndex(panel.mode.findData("grid"))
    assert panel.zoom.isEnabled() and panel.zoom.isChecked()
    panel.points.setValue(4)
    panel.noise.setValue(2)
    stages = []
    window.worker.progress.connect(lambda rid, kind, p: stages.append(p[1]) if p[0] == "stage" else None)
    with qtbot.waitSignal(window.scan_finished, timeout=120_000) as sig:
        window.request_scan()
    out = sig.args[0]
    assert [s["stage"] for s in out["stages"]] == [s["stage"] for s in stages] and len(stages) in (2, 3)
    assert len(stages[0]["omega_m"]) == 7 and stages[0]["omega_m"][0] == 0.1 and stages[0]["reason"] == "prior"
    last = out["meta"]
    assert last is panel.meta and len(last["omega_m"]) == len(last["sigma_8"]) == 4 and len(out["points"]) == 16
    assert [p["index"] for p in out["points"]] == list(range(16))
    # each point sits at its grid node in the panel's order (sigma_8 rows, omega_m columns)
    for p in out["points"]:
        i_s8, j_om = divmod(p["index"], 4)
        assert p["theta"] == pytest.approx((last["omega_m"][j_om], last["sigma_8"][i_s8]))
    s = panel.summary
    assert last["omega_m"][0] <= s["map"][0] <= last["omega_m"][-1]
    assert last["sigma_8"][0] <= s["map"][1] <= last["sigma_8"][-1]
    qtbot.waitUntil(lambda: panel.shown == (16, True), timeout=10_000)
    assert "MAP" in panel.message.text()
    with panel.figure_lock:
        assert f"stage {last['stage']}" in panel.figure.axes[0].get_title()
    # without zoom: one grid over the prior, as many points as asked
    panel.zoom.setChecked(False)
    with qtbot.waitSignal(window.scan_finished, timeout=60_000) as sig:
        window.request_scan()
    assert "stages" not in sig.args[0] and sig.args[0]["meta"]["omega_m"][0] == 0.1 and len(sig.args[0]["points"]) == 16
    panel.zoom.setChecked(True)
    panel.mode.setCurrentIndex(panel.mode.findData("omega_m"))
    assert not panel.zoom.isEnabled()


def test_cancel_during_sample(qtbot, window):
    states = []
    window.state_displayed.connect(lambda step, total: states.append(step))
    window.controls.set_steps(3000)
    with qtbot.waitSignal(window.state_displayed, timeout=60_000):
        window.request_sample()
    with qtbot.waitSignal(window.request_cancelled, timeout=30_000) as sig:
        window.act_cancel.trigger()
    assert sig.args == ["sample"] and states[-1] < 3000
    assert "cancelled" in window.status_label.text().lower()
    window.controls.set_steps(5)
    with qtbot.waitSignal(window.sample_displayed, timeout=60_000):
        window.request_sample()


def test_exports_reopen(qtbot, window, tmp_path, assets):
    # catalogs: the sample and the selected simulation, in every writable format
    for fmt in io.writable_formats():
        ext = fmt.extensions[0]
        for which in ("sample", "simulation"):
            path = tmp_path / f"{which}{ext}"
            assert window.export_catalog(which, path), window.status_label.text()
            cat = window.sample_catalog if which == "sample" else window.selected_catalog()
            if fmt.readable:
                (back,) = io.load(path)
                np.testing.assert_allclose(back.positions, cat.positions, rtol=1e-5, atol=1e-5)
            else:
                import pyvista as pv

                assert pv.read(path).n_points == len(cat)
    # the 3D view
    assert window.export_view(tmp_path / "view.png")
    img = QtGui.QImage(str(tmp_path / "view.png"))
    assert not img.isNull() and img.width() == window.view.plotter.width()
    # statistics figures, computed with the real lssviewer.stats on K = 2 model samples
    window.stats_panel.set_selected(["hmf", "xi"])
    window.stats_panel.k.setValue(2)
    with qtbot.waitSignal(window.stats_finished, timeout=120_000) as sig:
        window.request_stats()
    assert set(sig.args[0]) == {"hmf", "xi"}, window.stats_panel.errors
    assert window.stats_panel.tabs.count() == 2
    magic = {".png": b"\x89PNG", ".pdf": b"%PDF", ".svg": b"<?xml"}
    for ext, head in magic.items():
        assert window.export_stats_figure(tmp_path / f"stat{ext}")
        assert window.export_likelihood_figure(tmp_path / f"like{ext}")
        assert (tmp_path / f"stat{ext}").read_bytes().startswith(head)
        assert (tmp_path / f"like{ext}").read_bytes().startswith(head)
    assert not window.export_view(tmp_path / "view.jpg") and window.error_dialog is not None
    window.error_dialog.close()
    # a session reopens the same view in a fresh window: same files, selection, options, and (same
    # model, parameters and seed) the very same sample
    window.controls.set_seed(7)
    window.controls.set_theta(0.35, 0.9)
    with qtbot.waitSignal(window.sample_displayed, timeout=60_000):
        window.request_sample()
    window.select_catalog(0, 3)
    window.controls.color_by.setCurrentText("speed")
    assert window.save_session(tmp_path / "s.json")
    (tmp_path / "other").mkdir()
    other = make_window(qtbot, tmp_path / "other", assets["model"])
    qtbot.waitSignal(other.sample_displayed, timeout=60_000).wait()  # its own first sample
    with qtbot.waitSignal(other.sample_displayed, timeout=60_000):
        assert other.open_session(tmp_path / "s.json")
    assert other.controls.seed.value() == 7 and other.selected_index() == (0, 3)
    assert other.view.color_by == "speed" and [f.path for f in other.files] == [f.path for f in window.files]
    assert other.sample_catalog.omega_m == pytest.approx(0.35) and other.sample_catalog.sigma_8 == pytest.approx(0.9)
    np.testing.assert_array_equal(other.sample_catalog.positions, window.sample_catalog.positions)
    other.close()


def test_missing_model_and_demo_still_open(qtbot, tmp_path):
    def no_model(path, device):
        from lssviewer.errors import LssviewerError

        raise LssviewerError("no trained default model is installed")

    win = make_window(qtbot, tmp_path, None, default_files=[tmp_path / "demo_suite.h5"], loader=no_model)
    with qtbot.waitSignal(win.model_failed, timeout=30_000):
        pass
    text = win.status_label.text()
    assert "No model" in text or "not found" in text
    qtbot.waitUntil(lambda: "No model" in win.status_label.text(), timeout=10_000)
    assert not win.controls.sample_button.isEnabled()
    assert win.error_dialog is None  # the built-in model missing is said in the status bar, not a popup
    assert win.isVisible()
    win.request_sample()  # does nothing harmful
    win.close()


def test_pick_redshift_space_about_and_settings(qtbot, window, tmp_path, assets):
    cat = window.sample_catalog
    picked = []
    window.view.halo_picked.connect(picked.append)
    window.view._on_pick(cat.positions[7])
    assert picked[0]["layer"] == "sample" and picked[0]["index"] == 7
    assert "#7" in window.controls.picked.text()
    window.act_redshift.trigger()
    assert window.view.space == "redshift"
    np.testing.assert_allclose(window.view.layers["sample"].positions, cat.redshift_space_positions("z"))
    window.show_about()
    assert "tiny-test-model" in window.about_dialog.findChild(QtWidgets.QPlainTextEdit).toPlainText()
    window.about_dialog.close()
    window.controls.cmap.setCurrentText("magma")
    window.close()
    again = make_window(qtbot, tmp_path, None, loader=lambda p, d: (_ for _ in ()).throw(OSError("x")))
    assert again.controls.cmap.currentText() == "magma" and again.controls.space.currentText() == "redshift"
    again.close()


def test_drag_and_drop_opens_files(qtbot, window, rockstar_path):
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(rockstar_path))])
    pos = QtCore.QPointF(10, 10)
    event = QtGui.QDropEvent(pos, QtCore.Qt.DropAction.CopyAction, mime, QtCore.Qt.MouseButton.LeftButton,
                             QtCore.Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.files_opened, timeout=10_000):
        window.dropEvent(event)
    assert window.files[-1].path == str(rockstar_path.resolve())
