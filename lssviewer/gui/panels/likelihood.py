"""The likelihood panel: profiles of the model's log-likelihood (ELBO) in Omega_m and sigma_8, or a 2-D grid.

The scan itself runs in the inference worker through ``model.scan`` (common random numbers across
the grid, so the profile is smooth); the points arrive one by one and are drawn as they come,
with their standard errors. A 1-D profile holds the other parameter at the catalog's true value
(or the prior centre when the truth is unknown), like
:func:`lssviewer.model.likelihood.profile_1d`; when the scan ends the panel shows the MAP and the
68 % interval from :func:`lssviewer.model.likelihood.summarize_profile` (flat prior). The plot is
the panel's own matplotlib Figure, exportable to PNG/PDF/SVG.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from types import SimpleNamespace

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PySide6 import QtCore, QtGui, QtWidgets

from lssviewer.gui.gc_guard import start_guarded

MODES = {"omega_m": "Ωm profile", "sigma_8": "σ8 profile", "grid": "2-D grid"}
#: Plain Unicode labels: mathtext costs ~100 ms on a first draw, which would stall the window.
PARAM_LABELS = {"omega_m": "Ωm", "sigma_8": "σ8"}
#: Minimum time between two redraws while points stream in [ms] (an Agg redraw plus the window's
#: OpenGL re-composition cost 60-130 ms on 2 busy cores).
REDRAW_MS = 250
#: Points per axis of a zoomed 2-D scan's first grid over the prior (lssviewer.model.zoom).
ZOOM_COARSE = 7


def scan_grid(mode: str, points: int, prior: object, truth: tuple[float | None, float | None]
              ) -> tuple[np.ndarray, dict]:
    """The (P, 2) grid of (Omega_m, sigma_8) for a scan, and its description.

    Args:
        mode: "omega_m" or "sigma_8" (1-D profile: ``points`` values across the prior, the other
            parameter fixed at its truth when known and inside the prior, else the prior centre),
            or "grid" (``points`` x ``points`` over the prior box).
        prior: a PriorBox; truth: the catalog's (Omega_m, sigma_8), None where unknown.
    """
    bounds = np.array([prior.omega_m, prior.sigma_8], dtype=float)
    centre = bounds.mean(axis=1)
    fixed = []
    for i in range(2):
        t = truth[i]
        ok = t is not None and bounds[i, 0] <= t <= bounds[i, 1]
        fixed.append(float(t) if ok else float(centre[i]))
    if mode in ("omega_m", "sigma_8"):
        axis = 0 if mode == "omega_m" else 1
        values = np.linspace(bounds[axis, 0], bounds[axis, 1], points)
        grid = np.tile(fixed, (points, 1))
        grid[:, axis] = values
        meta = {"mode": mode, "axis": axis, "values": values.tolist(), "fixed": fixed,
                "truth": [None if t is None else float(t) for t in truth]}
        return grid, meta
    if mode == "grid":
        om = np.linspace(bounds[0, 0], bounds[0, 1], points)
        s8 = np.linspace(bounds[1, 0], bounds[1, 1], points)
        oo, ss = np.meshgrid(om, s8, indexing="xy")  # row = sigma_8, column = omega_m
        grid = np.column_stack([oo.ravel(), ss.ravel()])
        meta = {"mode": "grid", "axis": None, "omega_m": om.tolist(), "sigma_8": s8.tolist(),
                "truth": [None if t is None else float(t) for t in truth]}
        return grid, meta
    raise ValueError(f"scan mode must be one of {tuple(MODES)}")


def _stage_text(meta: dict | None) -> str:
    """" (stage 1, zoom window)" for a stage of a zoomed 2-D scan, else ""."""
    if not meta or "stage" not in meta:
        return ""
    what = "coarse grid over the prior" if meta["stage"] == 0 else f"window: {meta.get('reason', 'zoom')}"
    return f" (stage {meta['stage']}, {what})"


def _interval(value: object) -> tuple[float, float] | None:
    try:
        lo, hi = (float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    return (lo, hi) if math.isfinite(lo) and math.isfinite(hi) else None


class _RenderThread(QtCore.QObject):
    """One thread that draws the panel's figure; only the newest request is kept (older ones are
    superseded), and each finished picture is sent back as a QImage (``done``)."""

    done = QtCore.Signal(object)
    failed = QtCore.Signal(str)

    def __init__(self, parent: QtCore.QObject | None = None):
        super().__init__(parent)
        self.lock = threading.RLock()
        self._cond = threading.Condition()
        self._job: Callable[[], QtGui.QImage] | None = None
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name="lssviewer-plot", daemon=True)
        self.gc_guard = start_guarded(self._thread)  # cyclic garbage is collected in the GUI thread only

    def request(self, job: Callable[[], QtGui.QImage]) -> None:
        with self._cond:
            self._job = job
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(5)
        if not self._thread.is_alive():
            self.gc_guard.stop()

    def _loop(self) -> None:
        from lssviewer.gui.worker import lower_thread_priority

        lower_thread_priority()
        while True:
            with self._cond:
                while self._job is None and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                job, self._job = self._job, None
            try:
                with self.lock:
                    image = job()
            except Exception as exc:  # noqa: BLE001 - a failed picture is skipped; the next request redraws
                self.failed.emit(f"{type(exc).__name__}: {exc}")
                continue
            if not self._stop:
                self.done.emit(image)


def _calibrated_curve(points: list[dict], summary: dict, axis: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(theta, log L_T - max) of a 1-D summary's ``tempered_log_likelihood`` (per point, in the points' order),
    sorted along ``axis``; None when the summary has none, it does not match the points, or it is the raw log L
    (no calibration)."""
    tempered = summary.get("tempered_log_likelihood")
    if tempered is None or len(tempered) != len(points) or not points:
        return None
    if summary.get("temperature", 1.0) == 1.0 and summary.get("network_temperature", 1.0) == 1.0:
        return None
    x = np.array([d["theta"][axis] for d in points])
    y = np.asarray(tempered, dtype=float)
    order = np.argsort(x)
    return x[order], y[order] - y.max()


class LikelihoodPanel(QtWidgets.QWidget):
    run_requested = QtCore.Signal()
    cancel_requested = QtCore.Signal()
    export_requested = QtCore.Signal()
    redrawn = QtCore.Signal(int, int)  # points shown, grid size
    rendered = QtCore.Signal()  # a new picture is on screen

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        outer = QtWidgets.QVBoxLayout(self)
        top = QtWidgets.QHBoxLayout()
        self.mode = QtWidgets.QComboBox()
        for key, label in MODES.items():
            self.mode.addItem(label, key)
        top.addWidget(self.mode)
        top.addWidget(QtWidgets.QLabel("points"))
        self.points = QtWidgets.QSpinBox()
        self.points.setRange(3, 101)
        self.points.setValue(11)
        self.points.setToolTip("Grid points per parameter (a 2-D grid has points x points)")
        top.addWidget(self.points)
        self.zoom = QtWidgets.QCheckBox("zoom")
        self.zoom.setChecked(True)
        self.zoom.setToolTip("2-D grid: find the peak on a coarse 7 × 7 grid over the prior, then scan points × "
                             "points in a window around it, refined once more if needed (the likelihood is far "
                             "narrower than the prior: a grid over the whole prior puts it between a few nodes)")
        top.addWidget(self.zoom)
        top.addWidget(QtWidgets.QLabel("ELBO draws"))
        self.noise = QtWidgets.QSpinBox()
        self.noise.setRange(2, 256)
        self.noise.setValue(16)
        self.noise.setToolTip("Noise draws per ELBO evaluation, at stratified times (16: the setting the model's "
                              "calibration was fitted with; more = less estimator noise, slower)")
        top.addWidget(self.noise)
        top.addWidget(QtWidgets.QLabel("seed"))
        self.seed = QtWidgets.QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        top.addWidget(self.seed)
        top.addStretch(1)
        outer.addLayout(top)
        top = QtWidgets.QHBoxLayout()
        self.run_button = QtWidgets.QPushButton("Run scan")
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.export_button = QtWidgets.QPushButton("Export figure...")
        self.cancel_button.setEnabled(False)
        top.addWidget(self.run_button)
        top.addWidget(self.cancel_button)
        top.addStretch(1)
        top.addWidget(self.export_button)
        outer.addLayout(top)
        self.message = QtWidgets.QLabel("Scan the likelihood of the selected catalog.")
        self.message.setWordWrap(True)
        outer.addWidget(self.message)
        # The figure is drawn by a render thread into an image shown by a label: a matplotlib redraw
        # costs 60-140 ms on 2 busy cores, which on the GUI thread would stall the window at every
        # streamed point. Fixed margins, no layout engine (a constrained layout doubles the cost).
        self.figure = Figure(figsize=(6, 4), dpi=100)
        self.figure.subplots_adjust(left=0.16, right=0.96, bottom=0.14, top=0.9)
        self._agg = FigureCanvasAgg(self.figure)
        self.view = QtWidgets.QLabel()
        self.view.setMinimumSize(200, 160)
        self.view.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Ignored)
        self.view.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        outer.addWidget(self.view, 1)
        self._renderer = _RenderThread(self)
        self._renderer.done.connect(self._show_image)
        self._renderer.failed.connect(lambda msg: self.message.setText(f"Could not draw the figure: {msg}"))
        #: hold this to read or save :attr:`figure` from another thread (the render thread draws on it)
        self.figure_lock = self._renderer.lock

        self.points_received: list[dict] = []
        self.shown: tuple[int, bool] = (0, False)
        self._seq = 0
        self._shown_seq = 0
        self.meta: dict | None = None
        self.summary: dict | None = None
        self.catalog_label = ""
        self._grid_size = 0
        self._redraw = QtCore.QTimer(self, singleShot=True, interval=REDRAW_MS)
        self._redraw.timeout.connect(self.draw)
        self.mode.currentIndexChanged.connect(lambda _i: self.zoom.setEnabled(self.mode_key() == "grid"))
        self.zoom.setEnabled(self.mode_key() == "grid")
        self.run_button.clicked.connect(self.run_requested.emit)
        self.cancel_button.clicked.connect(self.cancel_requested.emit)
        self.export_button.clicked.connect(self.export_requested.emit)

    def warm_up(self) -> None:
        """Draw a throw-away figure once, so fonts and glyph caches are loaded before the first scan
        (the first text drawn in a process costs ~100 ms, which would otherwise stall the scan's start)."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        fig = Figure(figsize=(3, 2))
        ax = fig.add_subplot()
        ax.errorbar([0.1, 0.2], [0.0, -1.0], yerr=[0.1, 0.1], fmt="o-", label="log L")
        ax.set_xlabel(PARAM_LABELS["omega_m"] + " " + PARAM_LABELS["sigma_8"] + " log L − max [nats]")
        ax.set_title("warm-up", fontsize=9)
        ax.legend(fontsize=8)
        FigureCanvasAgg(fig).draw()

    # ------------------------------------------------------------------ settings
    def mode_key(self) -> str:
        return str(self.mode.currentData())

    def set_busy(self, busy: bool) -> None:
        self.run_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)

    # ------------------------------------------------------------------ data
    def begin(self, meta: dict, grid_size: int, catalog_label: str) -> None:
        """Start showing a scan (or the next stage of a zoomed 2-D scan: ``meta`` with "stage" and "reason")."""
        self.meta, self.summary, self.catalog_label = meta, None, catalog_label
        self.points_received = []
        self._grid_size = grid_size
        self.message.setText(f"Scanning {catalog_label}{_stage_text(meta)}: 0 / {grid_size} points")
        self._redraw.start(0)

    def add_point(self, point: dict) -> None:
        """Store a streamed point; the figure and the text follow at the next redraw tick (batched, so
        the window is re-composed at most every REDRAW_MS however fast the points come)."""
        self.points_received.append(point)
        if not self._redraw.isActive():
            self._redraw.start()

    def finish(self, result: dict) -> None:
        self._redraw.stop()
        self.points_received = list(result.get("points", self.points_received))
        self.summary = result.get("summary")
        text = f"{self.catalog_label}: {len(self.points_received)} points"
        s = self.summary or {}
        if "error" in s:
            text += f"; summary failed: {s['error']}"
        elif s.get("map") is not None and self.meta and self.meta.get("axis") is not None:
            name = "Ωm" if self.meta["axis"] == 0 else "σ8"
            iv = _interval(s.get("interval68"))
            text += f"; MAP {name} = {float(s['map']):.4g}"
            if iv:
                text += f", 68 % interval [{iv[0]:.4g}, {iv[1]:.4g}]"
            axis = self.meta["axis"]
            true_other = (self.meta.get("truth") or [None, None])[1 - axis]
            fixed = (self.meta.get("fixed") or [math.nan, math.nan])[1 - axis]
            why = ("its true value" if true_other is not None and math.isclose(true_other, fixed) else
                   "prior centre: truth unknown" if true_other is None else
                   "prior centre: its truth is outside the prior")
            text += (f" given {'σ8' if axis == 0 else 'Ωm'} = {fixed:.4g} ({why}; the 2-D grid gives the joint "
                     "constraint)")
        elif self.meta and self.meta.get("mode") == "grid" and s.get("map") is not None:
            text += f"; MAP Ωm = {float(s['map'][0]):.4g}, σ8 = {float(s['map'][1]):.4g}"
            for name, key in (("Ωm", "omega_m"), ("σ8", "sigma_8")):
                iv = _interval((s.get(key) or {}).get("interval68"))
                if iv:
                    text += f"; {name} 68 % [{iv[0]:.4g}, {iv[1]:.4g}]"
        t, t_net = s.get("temperature"), s.get("network_temperature")
        if isinstance(t_net, (int, float)) and t_net != 1.0 and "error" not in s:
            scale = f" / {t:.3g}" if isinstance(t, (int, float)) and t != 1.0 else ""
            text += f" (calibrated: [box statistics + network term / {t_net:.3g}]{scale})"
        elif isinstance(t, (int, float)) and t != 1.0 and "error" not in s:
            text += f" (intervals calibrated: log L / {t:.3g})"
        if result.get("window_cut"):
            text += ". The last zoom window cuts the 99 % region: contours may be open (more points, or zoom off)"
        self.message.setText(text)
        self.draw()

    def stopped(self, why: str) -> None:
        self._redraw.stop()
        self.message.setText(f"{why} after {len(self.points_received)} points.")
        self.draw()

    # ------------------------------------------------------------------ drawing
    def draw(self) -> None:
        """Ask the render thread for a new picture of the points received so far (never blocks).

        The text and the progress follow when the picture arrives, so that the window is re-composed
        once per picture (each re-composition costs 30-80 ms with software OpenGL on 2 cores)."""
        self._seq += 1
        st = SimpleNamespace(meta=self.meta, points=list(self.points_received), summary=self.summary,
                             label=self.catalog_label, grid_size=self._grid_size, seq=self._seq)
        size = self.view.size()
        self._renderer.request(lambda: (self._render(st, size.width(), size.height()), st))

    def _render(self, st: SimpleNamespace, width: int, height: int) -> QtGui.QImage:
        """Runs in the render thread, holding :attr:`figure_lock`."""
        dpi = self.figure.dpi
        self.figure.set_size_inches(max(width, 200) / dpi, max(height, 160) / dpi, forward=False)
        if not st.meta:
            self.figure.clear()
            self._axes = None
        elif st.meta["mode"] == "grid":
            self._draw_grid(st)
        else:
            self._draw_profile(st)
        self._agg.draw()
        buf = self._agg.buffer_rgba()
        h, w = buf.shape[:2]
        return QtGui.QImage(bytes(buf), w, h, 4 * w, QtGui.QImage.Format.Format_RGBA8888)

    def _show_image(self, result: tuple[QtGui.QImage, SimpleNamespace]) -> None:
        image, st = result
        if st.seq < self._shown_seq:
            return  # an older picture finished after a newer one was shown
        self._shown_seq = st.seq
        self.view.setPixmap(QtGui.QPixmap.fromImage(image))
        self.shown = (len(st.points), st.summary is not None)  # what the picture on screen contains
        if st.meta is not None and st.meta is self.meta and self.summary is None and st.grid_size \
                and self.cancel_button.isEnabled():  # still scanning: the final text is set by finish()
            self.message.setText(f"Scanning {st.label}{_stage_text(st.meta)}: {len(st.points)} / {st.grid_size} points")
        self.redrawn.emit(len(st.points), st.grid_size)
        self.rendered.emit()

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        if not self._redraw.isActive():
            self._redraw.start()

    def close_renderer(self) -> None:
        self._renderer.stop()

    def _fresh_axes(self, st: SimpleNamespace) -> object:
        key = (id(st.meta), len(st.points) == 0)
        if getattr(self, "_axes", None) is None or self._axes_key[0] != key[0]:
            self.figure.clear()
            self._axes = self.figure.add_subplot()
            self._axes_key = key
            self._data_artists: list = []
            self._decorated = False
        return self._axes

    def _clear_data_artists(self) -> None:
        for art in self._data_artists:
            art.remove()
        self._data_artists = []

    def _draw_profile(self, st: SimpleNamespace) -> None:
        ax = self._fresh_axes(st)
        axis = st.meta["axis"]
        param = "omega_m" if axis == 0 else "sigma_8"
        other = "sigma_8" if axis == 0 else "omega_m"
        values = st.meta["values"]
        truth = st.meta["truth"][axis]
        if not self._decorated:
            ax.set_xlim(values[0], values[-1])
            ax.set_xlabel(PARAM_LABELS[param])
            ax.set_ylabel("log L − max log L [nats]")
            ax.set_title(f"{st.label} ({PARAM_LABELS[other]} = {st.meta['fixed'][1 - axis]:.4g})",
                         fontsize=9)
            if truth is not None:
                ax.axvline(truth, color="k", ls="--", lw=1, label="truth")
            self._decorated = True
        self._clear_data_artists()
        s = st.summary or {}
        # error bars: the noise of log L - max (common random numbers), known once the scan ends; the absolute
        # ELBO's error (hundreds of nats) says nothing about the profile's shape
        diff = s.get("stderr_difference")
        errors = {} if diff is None or len(diff) != len(st.points) else {
            int(d["index"]): float(e) for d, e in zip(st.points, diff, strict=True)}
        pts = sorted(st.points, key=lambda d: d["theta"][axis])
        if pts:
            x = np.array([d["theta"][axis] for d in pts])
            y = np.array([d["log_likelihood"] for d in pts])
            e = np.nan_to_num(np.array([errors.get(int(d["index"]), 0.0) for d in pts]), nan=0.0)
            cont = ax.errorbar(x, y - y.max(), yerr=e if errors else None, fmt="o-", ms=4, lw=1, capsize=2,
                               color="C0", label="log L (ELBO)" + (" ± noise of log L − max" if errors else ""))
            self._data_artists.append(cont)
        tempered = _calibrated_curve(st.points, s, axis)
        if tempered is not None:  # the curve the MAP and interval come from, when it is not log L itself
            (line,) = ax.plot(*tempered, "--", color="C3", lw=1.2, label="calibrated log L")
            self._data_artists.append(line)
        if pts:  # room for the points with their bars and for the calibrated curve
            lo = min(float(np.min(y - y.max() - e)), float(np.min(tempered[1])) if tempered is not None else 0.0)
            ax.set_ylim(min(lo, -1.0) * 1.08, max(float(np.max(y - y.max() + e)), 0.5) * 1.5)
        if s.get("map") is not None:
            self._data_artists.append(ax.axvline(float(s["map"]), color="C3", lw=1.5, label="MAP"))
            iv = _interval(s.get("interval68"))
            if iv:
                self._data_artists.append(ax.axvspan(iv[0], iv[1], color="C3", alpha=0.15, label="68 % interval"))
        if st.summary is not None or (not pts and truth is not None):
            legend = ax.legend(fontsize=8, loc="lower center")  # only when the scan ends: legends are slow
            self._data_artists.append(legend)

    def _draw_grid(self, st: SimpleNamespace) -> None:
        ax = self._fresh_axes(st)
        om, s8 = np.array(st.meta["omega_m"]), np.array(st.meta["sigma_8"])
        img = np.full((len(s8), len(om)), np.nan)
        for d in st.points:
            i, j = divmod(int(d["index"]), len(om))
            img[i, j] = d["log_likelihood"]
        finite = np.isfinite(img)
        if finite.any():
            img = img - np.nanmax(img)
        t = st.meta["truth"]
        if not self._decorated:
            dom, ds8 = (om[1] - om[0]) / 2, (s8[1] - s8[0]) / 2
            self._image = ax.imshow(img, origin="lower", aspect="auto", cmap="viridis", vmin=-20, vmax=0,
                                    extent=(om[0] - dom, om[-1] + dom, s8[0] - ds8, s8[-1] + ds8))
            self.figure.colorbar(self._image, ax=ax, label="log L − max [nats]")
            if t[0] is not None and t[1] is not None:
                ax.plot(t[0], t[1], "kx", ms=9, mew=2, label="truth")
            ax.set_xlabel(PARAM_LABELS["omega_m"])
            ax.set_ylabel(PARAM_LABELS["sigma_8"])
            ax.set_title(st.label + _stage_text(st.meta), fontsize=9)
            self._decorated = True
        self._clear_data_artists()
        self._image.set_data(img)
        if finite.any():
            lo = float(np.nanmin(img))
            self._image.set_clim(max(lo, -50.0) if lo < 0 else -1.0, 0.0)
        s = st.summary or {}
        if s.get("map") is not None:
            (mark,) = ax.plot(float(s["map"][0]), float(s["map"][1]), "o", mfc="none", mec="C3", ms=10, mew=2,
                              label="MAP")
            self._data_artists.append(mark)
            levels = s.get("levels") or {}
            # the summary's levels (68 %, 95 %) are values of the (tempered) surface it was drawn from; the image
            # shows the raw log L - max, the contours the calibrated likelihood
            surface = np.asarray(s.get("tempered_log_likelihood", np.full((len(om), len(s8)), np.nan)), dtype=float)
            lv = sorted(float(v) for k, v in levels.items() if k in ("68", "95"))
            if len(lv) == 2 and len(om) > 1 and len(s8) > 1 and surface.shape == (len(om), len(s8)) \
                    and np.all(np.isfinite(surface)):
                # contours of the interpolant the summary used (smooth, not the nodes' polygons)
                try:
                    from lssviewer.model.likelihood import fine_grid_2d

                    fo, fs, fine = fine_grid_2d(om, s8, surface)
                    cx, cy, cz = fo, fs, fine.T
                except ImportError:  # no model package: the nodes
                    cx, cy, cz = om, s8, surface.T
                cs = ax.contour(cx, cy, cz, levels=lv, colors="w", linewidths=1, linestyles=["--", "-"])
                self._data_artists.append(cs)
                # legend entries for the two contours (white lines: drawn grey in the legend box)
                for style, name in (("-", "68 %"), ("--", "95 %")):
                    (proxy,) = ax.plot([], [], color="0.4", lw=1, ls=style, label=name)
                    self._data_artists.append(proxy)
        elif finite.any():
            i, j = np.unravel_index(np.nanargmax(img), img.shape)
            (mark,) = ax.plot(om[j], s8[i], "o", mfc="none", mec="C3", ms=10, mew=2, label="highest so far")
            self._data_artists.append(mark)
        if st.summary is not None:
            self._data_artists.append(ax.legend(fontsize=8, loc="upper right"))
