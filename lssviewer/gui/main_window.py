"""The main window: 3D view in the centre, controls / catalogs / statistics / likelihood docks.

State lives in a few explicit places: the loaded files (``self.files``), the current model sample
(``self.sample_catalog``), the model description (``self.model_info``) and the widgets' values
(which :meth:`MainWindow.session` snapshots). All model work goes through the one
:class:`~lssviewer.gui.worker.InferenceWorker`; every error becomes a one-line message in the
status bar and, for user actions, a (non-blocking) dialog.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from lssviewer.catalog import HaloCatalog
from lssviewer.cosmology import FIDUCIAL, Cosmology
from lssviewer.errors import LssviewerError
from lssviewer.gui import export, gc_guard
from lssviewer.gui.controls import ControlsPanel
from lssviewer.gui.panels.likelihood import ZOOM_COARSE, LikelihoodPanel, scan_grid
from lssviewer.gui.panels.statistics import StatisticsPanel
from lssviewer.gui.session import Session, load_session, save_session
from lssviewer.gui.view3d import CAMERA_PRESETS, HaloView
from lssviewer.gui.worker import InferenceWorker, ModelInfo, error_message

#: Two catalogs belong to the same cosmology when both parameters agree to this (absolute).
SAME_COSMOLOGY_TOL = 1e-6


@dataclasses.dataclass
class LoadedFile:
    path: str
    catalogs: list[HaloCatalog]


def _cosmo_text(cat: HaloCatalog) -> tuple[str, str]:
    om = "?" if cat.omega_m is None else f"{cat.omega_m:.4g}"
    s8 = "?" if cat.sigma_8 is None else f"{cat.sigma_8:.4g}"
    return om, s8


class MainWindow(QtWidgets.QMainWindow):
    """The lssviewer window.

    Args:
        model_path: model directory (None: the built-in model); loaded by :meth:`start`.
        settings: where window layout and options are remembered (default: the user's
            QSettings for lssviewer); tests pass an INI file in a temporary folder.
        loader, summarize, stats_backend: passed to the :class:`InferenceWorker` (tests and tools).
    """

    sample_displayed = QtCore.Signal(object)  # HaloCatalog on screen
    state_displayed = QtCore.Signal(int, int)  # step, total of an intermediate state on screen
    files_opened = QtCore.Signal(list)  # paths that loaded
    model_ready = QtCore.Signal(object)  # ModelInfo
    model_failed = QtCore.Signal(str)
    scan_finished = QtCore.Signal(object)
    stats_finished = QtCore.Signal(object)
    request_failed = QtCore.Signal(str, str)  # kind, message
    request_cancelled = QtCore.Signal(str)  # kind

    def __init__(self, model_path: str | None = None, settings: QtCore.QSettings | None = None,
                 loader: Callable[[str | None, str | None], Any] | None = None,
                 summarize: Callable[[np.ndarray, np.ndarray], dict | None] | None = None,
                 stats_backend: Any = None, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("lssviewer")
        self.setAcceptDrops(True)
        self.settings = settings if settings is not None else QtCore.QSettings("lssviewer", "lssviewer")
        self.model_path = model_path
        self.model_info: ModelInfo | None = None
        self.files: list[LoadedFile] = []
        self.sample_catalog: HaloCatalog | None = None
        self.error_dialog: QtWidgets.QMessageBox | None = None
        self.about_dialog: QtWidgets.QDialog | None = None
        self._sample_req: int | None = None
        self._sample_t0 = 0.0
        self._sample_theta: tuple[float, float] = (FIDUCIAL.omega_m, float(FIDUCIAL.sigma_8))
        self._scan_req: int | None = None
        self._stats_req: int | None = None
        self._model_req: int | None = None
        self._warm_req: int | None = None
        self.warmed_up = False  # True once the worker has done its first-time imports
        self._closing = False
        self._notices: dict[str, str] = {}

        self.worker = InferenceWorker(loader=loader, summarize=summarize, stats_backend=stats_backend,
                                      parent=self)
        self.view = HaloView(self)
        self.setCentralWidget(self.view)
        self.controls = ControlsPanel()
        self.controls.set_theta(*self._sample_theta)
        self.controls.set_model_enabled(False)
        self.catalog_tree = QtWidgets.QTreeWidget()
        self.catalog_tree.setHeaderLabels(["Catalog", "N", "Ωm", "σ8", "box [Mpc/h]", "z"])
        self.catalog_tree.setRootIsDecorated(True)
        self.catalog_tree.setToolTip("Open files (File > Open or drag and drop); select a catalog to show it")
        self.stats_panel = StatisticsPanel()
        self.likelihood_panel = LikelihoodPanel()
        self._build_docks()
        self._build_status_bar()
        self._build_actions()
        self._connect()
        self.resize(1400, 900)
        self._layout_restored = self._restore_settings()

    # ================================================================== construction
    def _dock(self, title: str, widget: QtWidgets.QWidget, area: QtCore.Qt.DockWidgetArea,
              name: str) -> QtWidgets.QDockWidget:
        dock = QtWidgets.QDockWidget(title, self)
        dock.setObjectName(name)
        if name == "controls":
            scroll = QtWidgets.QScrollArea()
            scroll.setWidget(widget)
            scroll.setWidgetResizable(True)
            widget = scroll
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_docks(self) -> None:
        left, right = QtCore.Qt.DockWidgetArea.LeftDockWidgetArea, QtCore.Qt.DockWidgetArea.RightDockWidgetArea
        self.controls_dock = self._dock("Controls", self.controls, left, "controls")
        self.catalogs_dock = self._dock("Catalogs", self.catalog_tree, left, "catalogs")
        self.stats_dock = self._dock("Statistics", self.stats_panel, right, "statistics")
        self.likelihood_dock = self._dock("Likelihood", self.likelihood_panel, right, "likelihood")
        self.tabifyDockWidget(self.stats_dock, self.likelihood_dock)
        self.stats_dock.raise_()

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.status_label = QtWidgets.QLabel("Starting...")
        self.progress = QtWidgets.QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.model_label = QtWidgets.QLabel("no model")
        bar.addWidget(self.status_label, 1)
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.model_label)

    def _action(self, text: str, slot: Callable[[], Any], shortcut: str | QtGui.QKeySequence | None = None,
                tip: str = "", checkable: bool = False) -> QtGui.QAction:
        act = QtGui.QAction(text, self)
        if shortcut is not None:
            act.setShortcut(QtGui.QKeySequence(shortcut))
        if tip:
            act.setStatusTip(tip)
            act.setToolTip(tip + (f" ({act.shortcut().toString()})" if shortcut else ""))
        act.setCheckable(checkable)
        if checkable:
            act.toggled.connect(slot)
        else:
            act.triggered.connect(lambda _checked=False: slot())
        self.addAction(act)
        return act

    def _build_actions(self) -> None:
        K = QtGui.QKeySequence.StandardKey
        self.act_open = self._action("&Open...", self.open_dialog, K.Open, "Open catalog files")
        self.act_open_session = self._action("Open &session...", self.open_session_dialog, "Ctrl+Shift+O",
                                             "Reopen a saved session")
        self.act_save_session = self._action("Save s&ession...", self.save_session_dialog, K.Save,
                                             "Save parameters, seed, model and files as a session")
        self.act_export_sample = self._action("Export &sample catalog...", lambda: self.export_catalog_dialog(
            "sample"), "Ctrl+E", "Write the model sample in any writable format")
        self.act_export_selected = self._action("Export se&lected catalog...",
                                                lambda: self.export_catalog_dialog("simulation"),
                                                "Ctrl+Shift+E", "Write the selected loaded catalog")
        self.act_export_view = self._action("Export 3D &view as PNG...", self.export_view_dialog, "Ctrl+P",
                                            "Save the 3D view as an image")
        self.act_export_stats = self._action("Export statistics &figure...", self.export_stats_dialog, None,
                                             "Save the statistics figure shown (PNG, PDF, SVG)")
        self.act_export_like = self._action("Export &likelihood figure...", self.export_likelihood_dialog, None,
                                            "Save the likelihood figure (PNG, PDF, SVG)")
        self.act_quit = self._action("&Quit", self.close, K.Quit, "Quit lssviewer")
        self.act_load_model = self._action("Load &model...", self.load_model_dialog, "Ctrl+M",
                                           "Load a model directory")
        self.act_sample = self._action("&Sample", self.request_sample, "Ctrl+R",
                                       "Draw a catalog at the current parameters")
        self.act_new_seed = self._action("&New seed", self.controls.draw_new_seed, "Ctrl+N",
                                         "New random seed, then sample")
        self.act_cancel = self._action("&Cancel", self.cancel_all, "Esc", "Cancel running requests")
        self.act_stats = self._action("Compute s&tatistics", self.request_stats, "Ctrl+T",
                                      "K samples against the loaded simulations")
        self.act_scan = self._action("Run likelihood s&can", self.request_scan, "Ctrl+L",
                                     "Scan the likelihood of the selected catalog")
        self.act_reset_camera = self._action("&Reset camera", self.view.reset_camera, "Ctrl+0",
                                             "Isometric view of the whole box")
        self.act_redshift = self._action("Redshift space", self._toggle_space, "Ctrl+Z",
                                         "Toggle real / redshift space", checkable=True)
        self.act_about = self._action("&About lssviewer", self.show_about, K.HelpContents,
                                      "Version and the model card")
        mb = self.menuBar()
        m = mb.addMenu("&File")
        for a in (self.act_open, self.act_open_session, self.act_save_session):
            m.addAction(a)
        m.addSeparator()
        ex = m.addMenu("&Export")
        for a in (self.act_export_sample, self.act_export_selected, self.act_export_view, self.act_export_stats,
                  self.act_export_like):
            ex.addAction(a)
        m.addSeparator()
        m.addAction(self.act_quit)
        m = mb.addMenu("&Model")
        for a in (self.act_sample, self.act_new_seed, self.act_cancel, None, self.act_stats, self.act_scan,
                  None, self.act_load_model):
            m.addSeparator() if a is None else m.addAction(a)
        m = mb.addMenu("&View")
        m.addAction(self.act_reset_camera)
        cams = m.addMenu("Camera")
        self.camera_actions = {}
        for i, name in enumerate(CAMERA_PRESETS, start=1):
            act = self._action(name, lambda n=name: self.view.camera_preset(n), f"Ctrl+{i}",
                               f"Camera: {name} view")
            cams.addAction(act)
            self.camera_actions[name] = act
        m.addAction(self.act_redshift)
        m.addSeparator()
        for dock in (self.controls_dock, self.catalogs_dock, self.stats_dock, self.likelihood_dock):
            m.addAction(dock.toggleViewAction())
        m = mb.addMenu("&Help")
        m.addAction(self.act_about)
        tb = self.addToolBar("Main")
        tb.setObjectName("toolbar")
        for a in (self.act_open, self.act_save_session, None, self.act_sample, self.act_new_seed, self.act_cancel,
                  None, self.act_reset_camera, self.act_redshift, None, self.act_export_view):
            tb.addSeparator() if a is None else tb.addAction(a)

    def _connect(self) -> None:
        c = self.controls
        c.sample_requested.connect(self.request_sample)
        c.cancel_button.clicked.connect(self.cancel_all)
        c.view_changed.connect(self._apply_view_options)
        c.set_from_catalog.connect(self.use_selected_cosmology)
        self.catalog_tree.itemSelectionChanged.connect(self._on_selection)
        self.view.halo_picked.connect(self._on_picked)
        self.stats_panel.compute_requested.connect(self.request_stats)
        self.stats_panel.cancel_requested.connect(lambda: self._cancel(self._stats_req))
        self.stats_panel.export_requested.connect(self.export_stats_dialog)
        self.likelihood_panel.run_requested.connect(self.request_scan)
        self.likelihood_panel.cancel_requested.connect(lambda: self._cancel(self._scan_req))
        self.likelihood_panel.export_requested.connect(self.export_likelihood_dialog)
        self.likelihood_panel.redrawn.connect(
            lambda n, total: self._set_progress(n, total, "scan %v/%m") if self._scan_req is not None
            and self.worker.is_busy() else None)
        w = self.worker
        w.started.connect(self._on_started)
        w.progress.connect(self._on_progress)
        w.result.connect(self._on_result)
        w.failed.connect(self._on_failed)
        w.cancelled.connect(self._on_cancelled)
        w.finished.connect(self._on_finished)

    # ================================================================== start-up
    def start(self, files: Sequence[str] | None = None, default_files: Iterable[Path] = ()) -> None:
        """Load the model (in the worker) and open ``files`` (or the default demo files)."""
        self.load_model(self.model_path)
        QtCore.QTimer.singleShot(0, self.likelihood_panel.warm_up)
        if files:
            self.open_files(files)
        else:
            existing = [p for p in default_files if p.exists()]
            if existing:
                self.open_files([str(p) for p in existing])
            elif default_files:
                names = ", ".join(str(p) for p in default_files)
                self.set_status(f"Demo simulations not found ({names}); open a catalog with File > Open.",
                                error=True)
                self._set_notice("demo", f"No demo simulations ({names}): open catalogs with File > Open.")

    def load_model(self, path: str | None) -> None:
        self.model_path = path
        self.controls.set_model_enabled(False)
        self.model_label.setText("loading model...")
        self.worker.cancel_all(["sample", "stats", "scan"])
        self._model_req = self.worker.load_model(path)

    # ================================================================== status and errors
    def _set_notice(self, key: str, text: str | None) -> None:
        """Start-up problems stay visible in the 3D view until solved (the status bar keeps only one line)."""
        if text:
            self._notices[key] = text
        else:
            self._notices.pop(key, None)
        import textwrap

        self.view.set_notice("\n".join(textwrap.fill(t, 90, subsequent_indent="  ") for t in self._notices.values()))

    def set_status(self, text: str, error: bool = False) -> None:
        self.status_label.setText(text)
        self.status_label.setStyleSheet("color: #d03030" if error else "")
        self.status_label.setToolTip(text)

    def show_error(self, title: str, message: str) -> None:
        """A non-blocking warning dialog with the one-line reason; also in the status bar."""
        self.set_status(message, error=True)
        if self._closing:
            return
        if self.error_dialog is not None:
            self.error_dialog.close()
        box = QtWidgets.QMessageBox(QtWidgets.QMessageBox.Icon.Warning, title, message,
                                    QtWidgets.QMessageBox.StandardButton.Ok, self)
        box.setWindowModality(QtCore.Qt.WindowModality.WindowModal)
        box.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda _r, b=box: self._forget_dialog(b))
        self.error_dialog = box
        box.open()

    def _forget_dialog(self, box: QtWidgets.QMessageBox) -> None:
        if self.error_dialog is box:
            self.error_dialog = None

    def _set_progress(self, value: int, total: int, fmt: str) -> None:
        # QProgressBar.setValue repaints synchronously, and with an OpenGL widget in the window that
        # re-composes the whole window (30-80 ms on software OpenGL): update it asynchronously instead
        bar = self.progress
        bar.setUpdatesEnabled(False)
        bar.setMaximum(max(total, 1))
        bar.setValue(min(value, max(total, 1)))
        bar.setFormat(fmt)
        bar.setUpdatesEnabled(True)
        bar.show()
        bar.update()

    # ================================================================== loading files
    def open_dialog(self) -> None:
        filt = export.qt_filter(export.readable_formats(), all_label="Catalogs")
        paths, _ = QtWidgets.QFileDialog.getOpenFileNames(self, "Open catalogs", self._last_dir(), filt)
        if paths:
            self.open_files(paths)

    def open_files(self, paths: Sequence[str | os.PathLike[str]]) -> list[str]:
        """Read each file with :func:`lssviewer.io.load`; a bad file shows a dialog and changes nothing.

        Returns the paths that loaded.
        """
        from lssviewer import io

        loaded, problems = [], []
        for p in paths:
            path = str(Path(p).expanduser().resolve())
            QtWidgets.QApplication.setOverrideCursor(QtCore.Qt.CursorShape.WaitCursor)
            try:
                catalogs = io.load(path)
            except (LssviewerError, OSError, MemoryError) as exc:
                problems.append(error_message(exc))
                continue
            except Exception as exc:  # noqa: BLE001 - a reader bug must not take the app down
                problems.append(f"{path}: {error_message(exc)}")
                continue
            finally:
                QtWidgets.QApplication.restoreOverrideCursor()
            self.files = [f for f in self.files if f.path != path]
            self.files.append(LoadedFile(path, catalogs))
            loaded.append(path)
        if loaded:
            self.settings.setValue("last_dir", str(Path(loaded[-1]).parent))
            self._refresh_tree(select=(len(self.files) - len(loaded), 0))
            n = sum(len(f.catalogs) for f in self.files if f.path in loaded)
            self.set_status(f"Opened {', '.join(Path(p).name for p in loaded)} ({n} catalog(s)).")
            self._set_notice("demo", None)
            self.files_opened.emit(loaded)
        if problems:
            self.show_error("Cannot open file", "\n".join(problems))
        return loaded

    def close_all_files(self) -> None:
        self.files = []
        self._refresh_tree(select=None)

    def _refresh_tree(self, select: tuple[int, int] | None) -> None:
        tree = self.catalog_tree
        with QtCore.QSignalBlocker(tree):
            tree.clear()
            for fi, f in enumerate(self.files):
                top = QtWidgets.QTreeWidgetItem([Path(f.path).name, str(len(f.catalogs))])
                top.setToolTip(0, f.path)
                top.setData(0, QtCore.Qt.ItemDataRole.UserRole, (fi, -1))
                top.setFlags(top.flags() & ~QtCore.Qt.ItemFlag.ItemIsSelectable)
                tree.addTopLevelItem(top)
                for ci, cat in enumerate(f.catalogs):
                    om, s8 = _cosmo_text(cat)
                    item = QtWidgets.QTreeWidgetItem([cat.name or f"#{ci}", str(len(cat)), om, s8,
                                                      f"{cat.box_size:g}", f"{cat.redshift:g}"])
                    item.setData(0, QtCore.Qt.ItemDataRole.UserRole, (fi, ci))
                    top.addChild(item)
                top.setExpanded(len(f.catalogs) <= 50)
            for col in range(tree.columnCount()):
                tree.resizeColumnToContents(col)
        if select is not None and self.files:
            self.select_catalog(*select)
        else:
            self._on_selection()

    def select_catalog(self, file_index: int, catalog_index: int) -> None:
        top = self.catalog_tree.topLevelItem(file_index)
        if top is None or not 0 <= catalog_index < top.childCount():
            return
        self.catalog_tree.setCurrentItem(top.child(catalog_index))

    def selected_index(self) -> tuple[int, int] | None:
        items = self.catalog_tree.selectedItems()
        if not items:
            return None
        fi, ci = items[0].data(0, QtCore.Qt.ItemDataRole.UserRole)
        return (fi, ci) if ci >= 0 else None

    def selected_catalog(self) -> HaloCatalog | None:
        idx = self.selected_index()
        return None if idx is None else self.files[idx[0]].catalogs[idx[1]]

    def _on_selection(self) -> None:
        cat = self.selected_catalog()
        label = ""
        if cat is not None:
            om, s8 = _cosmo_text(cat)
            label = f"{cat.name or 'catalog'} (Omega_m={om}, sigma_8={s8}, N={len(cat)})"  # VTK fonts: ASCII
        self.view.set_catalog("simulation", cat, label)

    def use_selected_cosmology(self) -> None:
        cat = self.selected_catalog()
        if cat is None or cat.omega_m is None or cat.sigma_8 is None:
            self.set_status("Select a catalog with a known (Ωm, σ8) first.", error=True)
            return
        self.controls.set_theta(cat.omega_m, cat.sigma_8)
        self.request_sample()

    def reference_catalogs(self) -> list[HaloCatalog]:
        """Loaded catalogs at the selected catalog's cosmology (its realisations), or just it."""
        sel = self.selected_catalog()
        if sel is None:
            return []
        if sel.omega_m is None or sel.sigma_8 is None:
            return [sel]
        return [c for f in self.files for c in f.catalogs
                if c.omega_m is not None and c.sigma_8 is not None
                and abs(c.omega_m - sel.omega_m) < SAME_COSMOLOGY_TOL
                and abs(c.sigma_8 - sel.sigma_8) < SAME_COSMOLOGY_TOL]

    # drag and drop -------------------------------------------------------------
    def dragEnterEvent(self, event: QtGui.QDragEnterEvent) -> None:  # noqa: N802 - Qt API
        if event.mimeData().hasUrls() and all(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QtGui.QDropEvent) -> None:  # noqa: N802 - Qt API
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        event.acceptProposedAction()
        sessions = [p for p in paths if p.lower().endswith(".json")]
        if sessions:
            self.open_session(sessions[0])
        others = [p for p in paths if not p.lower().endswith(".json")]
        if others:
            self.open_files(others)

    # ================================================================== requests
    def request_sample(self) -> int | None:
        """Sample at the sliders' values (a newer request supersedes an older one)."""
        if self.model_info is None:
            self.set_status("No model is loaded: cannot sample (Model > Load model...).", error=True)
            return None
        om, s8 = self.controls.theta()
        self._sample_theta = (om, s8)
        self._sample_t0 = time.perf_counter()
        self._sample_req = self.worker.sample(om, s8, seed=self.controls.seed.value(),
                                              steps=self.controls.steps_value())
        self.set_status(f"Sampling Ωm={om:.4g}, σ8={s8:.4g}, seed {self.controls.seed.value()}...")
        return self._sample_req

    def request_stats(self) -> int | None:
        if self.model_info is None:
            self.show_error("Statistics", "No model is loaded: the statistics panel needs model samples.")
            return None
        names = self.stats_panel.selected()
        if not names:
            self.set_status("Tick at least one statistic.", error=True)
            return None
        refs = self.reference_catalogs()
        om, s8 = self.controls.theta()
        self.stats_panel.clear()
        k = self.stats_panel.k.value()
        what = f"{len(refs)} simulation(s)" if refs else "no simulation (select a loaded catalog to compare)"
        sel = self.selected_catalog()
        note = ""
        if sel is not None and sel.omega_m is not None and sel.sigma_8 is not None and (
                abs(sel.omega_m - om) > 1e-3 or abs(sel.sigma_8 - s8) > 1e-3):
            note = (f" Note: the simulations are at Ωm={sel.omega_m:.4g}, σ8={sel.sigma_8:.4g} "
                    "('Use selected catalog's cosmology' to match).")
        self.stats_panel.message.setText(f"{k} model samples at Ωm={om:.4g}, σ8={s8:.4g} vs {what}.{note}")
        self._stats_req = self.worker.stats(names, om, s8, k, refs, seed=self.controls.seed.value(),
                                            steps=self.controls.steps_value())
        self.stats_panel.set_busy(True)
        return self._stats_req

    def request_scan(self) -> int | None:
        if self.model_info is None:
            self.show_error("Likelihood", "No model is loaded: the likelihood needs a model.")
            return None
        cat, label = self.selected_catalog(), None
        if cat is None:
            cat, label = self.sample_catalog, "the model sample"
            if cat is None:
                self.show_error("Likelihood", "Open and select a catalog (or draw a sample) to scan.")
                return None
        info = self.model_info
        if len(cat) > info.n_halos and np.isclose(cat.box_size, info.box_size) \
                and abs(cat.redshift - info.redshift) < 1e-6:
            cat = cat.top_n(info.n_halos)  # the model scores its n_halos most massive halos
            label = f"{label or cat.name or 'selected catalog'} (top {info.n_halos} by mass)"
        panel = self.likelihood_panel
        truth = (cat.omega_m, cat.sigma_8)
        zoom = panel.mode_key() == "grid" and panel.zoom.isChecked()
        # a zoomed scan starts on the coarse grid over the prior; the worker announces each stage's grid
        grid, meta = scan_grid(panel.mode_key(), ZOOM_COARSE if zoom else panel.points.value(),
                               self.model_info.prior, truth)
        label = label or (cat.name or "selected catalog")
        panel.begin(meta, len(grid), label)
        panel.set_busy(True)
        settings = {"points": panel.points.value(), "coarse": ZOOM_COARSE} if zoom else None
        self._scan_req = self.worker.scan(cat, None if zoom else grid, n_noise=panel.noise.value(),
                                          seed=panel.seed.value(), meta=meta, zoom=settings)
        if self.likelihood_panel.visibleRegion().isEmpty():
            self.likelihood_dock.raise_()  # started from the menu/shortcut: show where points appear
        return self._scan_req

    def cancel_all(self) -> None:
        self.worker.cancel_all(["sample", "stats", "scan"])

    def _cancel(self, req: int | None) -> None:
        if req is not None:
            self.worker.cancel(req)

    # ================================================================== worker signals
    def _on_started(self, rid: int, kind: str) -> None:
        if self._closing:  # queued signals of a worker already shut down
            return
        if kind == "sample" and rid == self._sample_req:
            self._set_progress(0, 1, "sampling %p%")
        elif kind == "scan":
            self._set_progress(0, 1, "scan %v/%m")
        elif kind == "stats":
            self._set_progress(0, 1, "statistics: sampling %p%")
        elif kind == "load_model":
            self.set_status("Loading the model...")

    def _on_progress(self, rid: int, kind: str, payload: tuple) -> None:
        if self._closing:  # queued signals of a worker already shut down
            return
        tag = payload[0]
        if kind == "sample":
            if rid != self._sample_req:
                return
            if tag == "step":
                self._set_progress(payload[1], payload[2], "sampling %p%")
            elif tag == "state":
                _, step, total, state = payload
                info = self.model_info
                if info is not None:
                    om, s8 = self._sample_theta
                    self.view.show_state(state, info.box_size, info.redshift, Cosmology(om, s8),
                                         label=f"denoising {step}/{total}")
                    self.state_displayed.emit(step, total)
        elif kind == "scan" and rid == self._scan_req and tag == "point":
            self.likelihood_panel.add_point(payload[1])  # the progress bar follows the panel's redraws
        elif kind == "scan" and rid == self._scan_req and tag == "stage":
            panel = self.likelihood_panel
            panel.begin(payload[1], payload[2], panel.catalog_label)
        elif kind == "stats" and rid == self._stats_req:
            if tag == "step":
                self._set_progress(payload[1], payload[2], "statistics: sampling %p%")
            elif tag == "stat":
                self.stats_panel.add_figure(payload[1], payload[2])
            elif tag == "stat_error":
                self.stats_panel.add_error(payload[1], payload[2])

    def _on_result(self, rid: int, kind: str, out: Any) -> None:
        if self._closing:  # queued signals of a worker already shut down
            return
        if kind == "load_model" and rid == self._model_req:
            self._model_loaded(out)
        elif kind == "sample" and rid == self._sample_req:
            cat = out[0]
            self.sample_catalog = cat
            om, s8 = self._sample_theta
            self.view.set_catalog("sample", cat, f"model sample Omega_m={om:.4g}, sigma_8={s8:.4g}, "
                                                 f"seed {self.controls.seed.value()}")
            dt = time.perf_counter() - self._sample_t0
            self.set_status(f"Sampled {len(cat)} halos at Ωm={om:.4g}, σ8={s8:.4g} in {dt:.2f} s.")
            self.sample_displayed.emit(cat)
        elif kind == "scan" and rid == self._scan_req:
            self.likelihood_panel.finish(out)
            self.set_status(self.likelihood_panel.message.text())
            self.scan_finished.emit(out)
        elif kind == "stats" and rid == self._stats_req:
            self.set_status(f"Statistics done ({len(out)} figure(s)).")
            self.stats_finished.emit(out)

    def _model_loaded(self, info: ModelInfo) -> None:
        self.model_info = info
        self._set_notice("model", None)
        self.controls.set_prior(info.prior)
        self.controls.device.setText(info.device)
        self.controls.n_halos.setText(f"{info.n_halos} per {info.box_size:g} Mpc/h box, z = {info.redshift:g}")
        self.controls.steps.setSpecialValueText(f"model default ({info.default_steps})")
        self.controls.set_model_enabled(True)
        name = info.card.get("name") or (Path(info.path).name if info.path else "built-in model")
        self.model_label.setText(f"model: {name} on {info.device}")
        self.set_status(f"Model loaded ({name}, {info.n_halos} halos, device {info.device}).")
        self.model_ready.emit(info)
        self.request_sample()
        self.warmed_up = False
        self._warm_req = self.worker.warm_up()  # queued behind the first sample

    def _on_failed(self, rid: int, kind: str, message: str) -> None:
        if self._closing:  # queued signals of a worker already shut down
            return
        if kind == "load_model":
            if rid != self._model_req:
                return
            self.model_info = None
            self.controls.set_model_enabled(False)
            self.model_label.setText("no model")
            self.set_status(f"No model: {message}", error=True)
            self._set_notice("model", "No model: " + message)
            self.model_failed.emit(message)
            if self.model_path is not None:  # a model the user asked for: tell them loudly
                self.show_error("Cannot load the model", message)
            return
        if kind == "warm_up":
            return  # only costs speed later
        if kind == "scan" and rid == self._scan_req:
            self.likelihood_panel.stopped("Failed")
        if kind == "sample" and rid != self._sample_req:
            return
        self.show_error(f"{kind.capitalize()} failed", message)
        self.request_failed.emit(kind, message)

    def _on_cancelled(self, rid: int, kind: str) -> None:
        if self._closing:  # queued signals of a worker already shut down
            return
        if kind == "scan" and rid == self._scan_req:
            self.likelihood_panel.stopped("Cancelled")
        if kind == "sample" and rid != self._sample_req:
            return  # superseded by a newer sample
        if kind in ("sample", "scan", "stats"):
            self.set_status(f"{kind.capitalize()} cancelled.")
            self.request_cancelled.emit(kind)

    def _on_finished(self, rid: int, kind: str) -> None:
        if self._closing:  # queued signals of a worker already shut down
            return
        if kind == "warm_up" and rid == self._warm_req:
            self.warmed_up = True
            gc_guard.freeze_now()  # the model and the first-time imports are long-lived: keep them out of collections
        if kind == "scan" and rid == self._scan_req:
            self.likelihood_panel.set_busy(False)
        if kind == "stats" and rid == self._stats_req:
            self.stats_panel.set_busy(False)
        if not self.worker.is_busy():
            self.progress.hide()

    # ================================================================== view
    def _apply_view_options(self) -> None:
        c, v = self.controls, self.view
        if c.display.currentText() != v.display:
            v.set_display(c.display.currentText())
        if c.color_by.currentText() != v.color_by:
            v.set_color_by(c.color_by.currentText())
        if c.cmap.currentText() != v.cmap:
            v.set_cmap(c.cmap.currentText())
        if c.space.currentText() != v.space or c.los_axis.currentText() != v.los_axis:
            v.set_space(c.space.currentText(), c.los_axis.currentText())
            if c.color_by.currentText() == "line-of-sight velocity":
                v.redraw()
        if c.size_by_mass.isChecked() != v.size_by_mass:
            v.set_size_by_mass(c.size_by_mass.isChecked())
        with QtCore.QSignalBlocker(self.act_redshift):
            self.act_redshift.setChecked(v.space == "redshift")

    def _toggle_space(self, on: bool) -> None:
        self.controls.space.setCurrentText("redshift" if on else "real")

    def _on_picked(self, info: dict) -> None:
        text = (f"<b>{info['layer']} halo #{info['index']}</b><br>"
                f"x, y, z = {info['x']:.2f}, {info['y']:.2f}, {info['z']:.2f} Mpc/h<br>"
                f"v = ({info['vx']:.0f}, {info['vy']:.0f}, {info['vz']:.0f}) km/s, |v| = {info['speed']:.0f}"
                f" km/s<br>log10 M = {info['log10_mass']:.3f} [Msun/h]")
        self.controls.picked.setText(text)
        self.set_status(f"Picked {info['layer']} halo #{info['index']}: log10 M = {info['log10_mass']:.3f}, "
                        f"|v| = {info['speed']:.0f} km/s")

    # ================================================================== export
    def _last_dir(self) -> str:
        return str(self.settings.value("last_dir", str(Path.home())))

    def _save_path(self, title: str, default_name: str, filt: str) -> str | None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, title, str(Path(self._last_dir()) / default_name),
                                                        filt)
        if path:
            self.settings.setValue("last_dir", str(Path(path).parent))
        return path or None

    def export_catalog(self, which: str, path: str | os.PathLike[str]) -> bool:
        """Write the 'sample' or the selected 'simulation' catalog to ``path``; False (and a dialog) on error."""
        cat = self.sample_catalog if which == "sample" else self.selected_catalog()
        if cat is None:
            self.show_error("Export", f"There is no {'model sample' if which == 'sample' else 'selected catalog'}"
                                      " to export.")
            return False
        return self._guarded("Export failed", lambda: export.export_catalog(cat, path),
                             f"Wrote {which} catalog to {path}.")

    def export_catalog_dialog(self, which: str) -> None:
        path = self._save_path("Export catalog", f"{which}.h5", export.qt_filter(export.catalog_formats()))
        if path:
            self.export_catalog(which, path)

    def export_view(self, path: str | os.PathLike[str]) -> bool:
        return self._guarded("Export failed", lambda: export.export_view(self.view, path), f"Saved view to {path}.")

    def export_view_dialog(self) -> None:
        path = self._save_path("Export 3D view", "view.png", "PNG image (*.png)")
        if path:
            self.export_view(path)

    def _figure_filter(self) -> str:
        return export.qt_filter([(d, (e,)) for e, d in export.FIGURE_FORMATS.items()])

    def export_stats_figure(self, path: str | os.PathLike[str]) -> bool:
        cur = self.stats_panel.current_figure()
        if cur is None:
            self.show_error("Export", "No statistics figure yet: press Compute in the Statistics panel.")
            return False
        return self._guarded("Export failed", lambda: export.export_figure(cur[1], path),
                             f"Saved {cur[0]} figure to {path}.")

    def export_stats_dialog(self) -> None:
        cur = self.stats_panel.current_figure()
        path = self._save_path("Export statistics figure", f"{cur[0] if cur else 'statistics'}.png",
                               self._figure_filter())
        if path:
            self.export_stats_figure(path)

    def export_likelihood_figure(self, path: str | os.PathLike[str]) -> bool:
        panel = self.likelihood_panel

        def save() -> None:
            with panel.figure_lock:  # the panel's render thread draws on this figure
                export.export_figure(panel.figure, path)

        return self._guarded("Export failed", save, f"Saved likelihood figure to {path}.")

    def export_likelihood_dialog(self) -> None:
        path = self._save_path("Export likelihood figure", "likelihood.png", self._figure_filter())
        if path:
            self.export_likelihood_figure(path)

    def _guarded(self, title: str, fn: Callable[[], Any], done: str) -> bool:
        try:
            fn()
        except (LssviewerError, OSError, ValueError) as exc:
            self.show_error(title, error_message(exc))
            return False
        self.set_status(done)
        return True

    # ================================================================== sessions
    def session(self) -> Session:
        c = self.controls
        om, s8 = c.theta()
        return Session(omega_m=om, sigma_8=s8, seed=c.seed.value(), steps=c.steps_value(), model=self.model_path,
                       files=[f.path for f in self.files], selected=self.selected_index(),
                       color_by=self.view.color_by, cmap=self.view.cmap, space=self.view.space,
                       los_axis=self.view.los_axis, display=self.view.display,
                       camera=self.view.camera_position(), stat_samples=self.stats_panel.k.value(),
                       scan_points=self.likelihood_panel.points.value(),
                       scan_noise=self.likelihood_panel.noise.value(), scan_zoom=self.likelihood_panel.zoom.isChecked())

    def save_session(self, path: str | os.PathLike[str]) -> bool:
        return self._guarded("Cannot save the session", lambda: save_session(self.session(), path),
                             f"Saved session to {path}.")

    def save_session_dialog(self) -> None:
        path = self._save_path("Save session", "session.json", "lssviewer session (*.json)")
        if path:
            self.save_session(path)

    def open_session_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Open session", self._last_dir(),
                                                        "lssviewer session (*.json);;All files (*)")
        if path:
            self.open_session(path)

    def open_session(self, path: str | os.PathLike[str]) -> bool:
        """Reopen a saved session: files, selection, view options, camera, parameters, then sample."""
        try:
            s = load_session(path)
        except LssviewerError as exc:
            self.show_error("Cannot open the session", error_message(exc))
            return False
        c = self.controls
        self.files = []
        if s.files:
            self.open_files(s.files)
        if s.selected is not None:
            self.select_catalog(*s.selected)
        with QtCore.QSignalBlocker(c):
            for combo, value in ((c.display, s.display), (c.color_by, s.color_by), (c.cmap, s.cmap),
                                 (c.space, s.space), (c.los_axis, s.los_axis)):
                with QtCore.QSignalBlocker(combo):
                    combo.setCurrentText(value)
        self._apply_view_options()
        if s.camera is not None:
            self.view.set_camera_position(s.camera)
        c.set_theta(s.omega_m, s.sigma_8)
        c.set_seed(s.seed)
        c.set_steps(s.steps)
        self.stats_panel.k.setValue(s.stat_samples)
        self.likelihood_panel.points.setValue(s.scan_points)
        self.likelihood_panel.noise.setValue(s.scan_noise)
        self.likelihood_panel.zoom.setChecked(s.scan_zoom)
        if s.model != self.model_path or self.model_info is None:
            self.load_model(s.model)  # samples when loaded
        else:
            self.request_sample()
        self.set_status(f"Opened session {path}.")
        return True

    def load_model_dialog(self) -> None:
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Load model directory", self._last_dir())
        if path:
            self.load_model(path)

    # ================================================================== about
    def show_about(self) -> None:
        from lssviewer._version import __version__

        card = self.model_info.card if self.model_info else {}
        dlg = QtWidgets.QDialog(self)
        dlg.setWindowTitle("About lssviewer")
        lay = QtWidgets.QVBoxLayout(dlg)
        head = QtWidgets.QLabel(
            f"<h3>lssviewer {__version__}</h3><p>Field-level generative models of dark-matter halo catalogs: "
            "sample catalogs at any (Ωm, σ8), score them, compare them with simulations.</p>")
        head.setWordWrap(True)
        lay.addWidget(head)
        text = QtWidgets.QPlainTextEdit()
        text.setReadOnly(True)
        if card:
            text.setPlainText("Model card\n\n" + json.dumps(card, indent=2, default=str))
        else:
            text.setPlainText("No model is loaded.")
        lay.addWidget(text, 1)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(dlg.close)
        lay.addWidget(buttons)
        dlg.resize(560, 480)
        self.about_dialog = dlg
        dlg.show()

    # ================================================================== settings and closing
    def showEvent(self, event: QtGui.QShowEvent) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        if not self._layout_restored:  # first launch: a sensible split (docks only size once shown)
            self._layout_restored = True
            self.resizeDocks([self.controls_dock, self.stats_dock], [300, 560], QtCore.Qt.Orientation.Horizontal)
            self.resizeDocks([self.controls_dock, self.catalogs_dock], [600, 250], QtCore.Qt.Orientation.Vertical)

    def _restore_settings(self) -> bool:
        """Window layout and options from the settings; True if a saved layout was restored."""
        s = self.settings
        geom, state = s.value("window/geometry"), s.value("window/state")
        if geom is not None:
            self.restoreGeometry(geom)
        restored = state is not None and bool(self.restoreState(state))
        c = self.controls
        for key, combo in (("view/display", c.display), ("view/color_by", c.color_by), ("view/cmap", c.cmap),
                           ("view/space", c.space), ("view/los_axis", c.los_axis)):
            value = s.value(key)
            if value is not None and combo.findText(str(value)) >= 0:
                with QtCore.QSignalBlocker(combo):
                    combo.setCurrentText(str(value))
        # "scan/draws" (not the older "scan/noise", saved under the former default of 4 antithetic draws)
        for key, box in (("stats/k", self.stats_panel.k), ("scan/points", self.likelihood_panel.points),
                         ("scan/draws", self.likelihood_panel.noise), ("sampler/steps", c.steps)):
            value = s.value(key)
            if value is not None:
                with QtCore.QSignalBlocker(box):
                    box.setValue(int(value))
        zoom = s.value("scan/zoom")
        if zoom is not None:
            self.likelihood_panel.zoom.setChecked(str(zoom).lower() in ("true", "1"))
        self._apply_view_options()
        return restored

    def save_settings(self) -> None:
        s, c = self.settings, self.controls
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        for key, combo in (("view/display", c.display), ("view/color_by", c.color_by), ("view/cmap", c.cmap),
                           ("view/space", c.space), ("view/los_axis", c.los_axis)):
            s.setValue(key, combo.currentText())
        s.setValue("stats/k", self.stats_panel.k.value())
        s.setValue("scan/points", self.likelihood_panel.points.value())
        s.setValue("scan/draws", self.likelihood_panel.noise.value())
        s.setValue("scan/zoom", self.likelihood_panel.zoom.isChecked())
        s.setValue("sampler/steps", c.steps.value())
        s.sync()

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802 - Qt API
        self._closing = True
        self.save_settings()
        self.worker.shutdown(timeout=10.0)
        self.likelihood_panel.close_renderer()
        self.view.close_view()
        super().closeEvent(event)
