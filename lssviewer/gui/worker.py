"""The inference worker: ONE background thread that owns the model and runs requests in order.

Why one thread: the model (a torch module on some device) is not thread-safe and must not be
touched from the GUI thread; serialising every model call in one thread also makes results
reproducible. The GUI talks to the worker only through :meth:`InferenceWorker.submit`-style
methods and Qt signals (delivered queued on the GUI thread), so the window never blocks.

Requests:

* ``load_model(path, device)`` -> :class:`ModelInfo` (also emitted as ``model_loaded``);
* ``sample(omega_m, sigma_8, seed, steps, n)`` -> ``list[HaloCatalog]``; streams
  ``("step", step, total)`` and throttled ``("state", step, total, array)`` progress, with the
  array the current denoised estimate, shape (n_halos, 7): x y z [Mpc/h], vx vy vz [km/s],
  log10 M [Msun/h] (the model API's convention);
* ``scan(catalog, grid, n_noise, seed)`` -> dict with all points and the summary; streams
  ``("point", ScanPoint-like dict)`` as each likelihood point finishes;
* ``stats(names, omega_m, sigma_8, k, references)`` -> dict name -> Figure; streams the sampling
  steps and ``("stat", name, figure)`` / ``("stat_error", name, message)`` per statistic.

A sample submitted with ``supersede=True`` (the slider's) drops queued superseding samples and
cancels a running one: the newest parameters win. Every request can be cancelled
(:meth:`cancel`); the model sees a ``cancel()`` callable and raises, the worker reports
``cancelled``. Any exception becomes ``failed(id, kind, one-line message)`` and the worker keeps
running.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from PySide6 import QtCore

from lssviewer.gui.gc_guard import start_guarded

#: Minimum time between two intermediate states sent to the GUI during sampling (seconds): the
#: GUI renders each state and the whole window is re-composed through OpenGL (30-80 ms with
#: llvmpipe on 2 cores), so 4 per second.
STATE_INTERVAL_S = 0.25
#: Minimum time between two "step" progress messages (seconds); the last step is always sent. A
#: progress bar repaints synchronously when its value changes, so ~5 updates per second at most.
STEP_INTERVAL_S = 0.25
#: Python's GIL switch interval while a worker exists (seconds). Every Qt call from the GUI thread
#: releases and re-takes the GIL; with the default 5 ms, a busy worker makes each re-take wait up
#: to 5 ms, and a slot with ten Qt calls stalls the window ~50 ms. 1 ms keeps gaps small.
GIL_SWITCH_INTERVAL_S = 0.001


class RequestCancelled(Exception):
    """Raised inside the worker when a request's cancel flag is seen between model calls."""


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What the GUI needs to know about the loaded model (copied out of the worker thread)."""

    prior: Any  # lssviewer.cosmology.PriorBox
    n_halos: int
    box_size: float
    redshift: float
    device: str
    default_steps: int
    card: dict
    path: str | None


@dataclasses.dataclass
class Request:
    id: int
    kind: str
    params: dict
    supersede: bool = False
    cancel_event: threading.Event = dataclasses.field(default_factory=threading.Event)

    def cancelled(self) -> bool:
        return self.cancel_event.is_set()


def _default_loader(path: str | None, device: str | None) -> Any:
    try:
        from lssviewer.model import load_model
    except ImportError:
        load_model = None
    try:
        if load_model is None:  # the package's __init__ may not re-export it (yet)
            from lssviewer.model.api import load_model
    except ImportError as exc:
        from lssviewer.errors import LssviewerError

        raise LssviewerError(f"the model package is not available in this installation ({exc})") from None

    return load_model(path=path, device=device)


def grid_tempering(model: Any) -> Any:
    """How a model's 2-D grids temper log L (:func:`lssviewer.model.zoom.default_grid_tempering`: its
    ``grid_tempering()``, else its ``grid_temperature_or_pooled()`` / ``temperature`` for all of log L)."""
    from lssviewer.model.zoom import default_grid_tempering

    return default_grid_tempering(model)


def profile_tempering(model: Any, param: str) -> Any:
    """How a model's 1-D profiles over ``param`` temper log L
    (:func:`lssviewer.model.likelihood.default_profile_tempering`)."""
    from lssviewer.model.likelihood import default_profile_tempering

    return default_profile_tempering(model, param)


def _default_summarize(values: np.ndarray, log_likelihood: np.ndarray, temperature: Any = 1.0,
                       box_log_likelihood: np.ndarray | None = None) -> dict | None:
    """:func:`lssviewer.model.likelihood.summarize_profile` plus ``tempered_log_likelihood`` (per point, in the
    order given), the curve its MAP and intervals come from, which the panel draws beside the raw log L."""
    try:
        from lssviewer.model.likelihood import as_tempering, summarize_profile
    except ImportError:
        return None
    out = summarize_profile(values, log_likelihood, temperature=temperature, box_log_likelihood=box_log_likelihood)
    out["tempered_log_likelihood"] = as_tempering(temperature).apply(log_likelihood, box_log_likelihood).tolist()
    return out


def _default_summarize_2d(omega_m: np.ndarray, sigma_8: np.ndarray, log_likelihood: np.ndarray,
                          temperature: Any = 1.0, box_log_likelihood: np.ndarray | None = None) -> dict | None:
    """:func:`lssviewer.model.likelihood.summarize_grid_2d` plus ``tempered_log_likelihood``, the surface
    (nodes, omega_m index first) its levels belong to, which the panel contours."""
    try:
        from lssviewer.model.likelihood import summarize_grid_2d, tempered_grid_2d
    except ImportError:
        return None
    out = summarize_grid_2d(omega_m, sigma_8, log_likelihood, temperature=temperature,
                            box_log_likelihood=box_log_likelihood)
    out["tempered_log_likelihood"] = tempered_grid_2d(omega_m, sigma_8, log_likelihood, temperature,
                                                      box_log_likelihood).tolist()
    return out


class _DefaultStats:
    """The statistics backend: :func:`lssviewer.stats.compute_sets` (shared bins for all sets) and
    :func:`lssviewer.stats.plots.figure` (means +- std, residuals in sigma against ``reference``)."""

    @staticmethod
    def compute_sets(name: str, sets: dict[str, Sequence[Any]], **options: Any) -> dict[str, Any]:
        from lssviewer import stats

        return stats.compute_sets(name, sets, **options)

    @staticmethod
    def figure(name: str, results: dict[str, Any], reference: str | None = None) -> Any:
        from lssviewer.stats import plots

        return plots.figure(name, results, reference=reference)


def lower_thread_priority(niceness: int = 10) -> None:
    """Make the calling thread nicer to the scheduler (Linux: per-thread niceness), so that on a
    busy machine the GUI thread, which repaints the window, is scheduled first. No-op elsewhere."""
    import os

    if hasattr(os, "setpriority") and hasattr(threading, "get_native_id"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
        except OSError:
            pass


def _leave_a_core_for_the_gui() -> None:
    """On a CPU model, use all cores but one for torch so the GUI thread (and the X server) get one.

    On 2 cores torch's two threads otherwise starve the window's repaints (measured gaps of
    100-200 ms between 10 ms timer ticks while sampling); one thread samples about as fast there.
    """
    import os

    try:
        import torch
    except ImportError:
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 2)
    if cores <= 8 and torch.get_num_threads() > max(1, cores - 1):
        torch.set_num_threads(max(1, cores - 1))


def error_message(exc: BaseException) -> str:
    """The one-line text shown for ``exc`` (the same line the CLI prints)."""
    from lssviewer.cli import error_line

    return error_line(exc)


def scan_point_dict(pt: Any) -> dict:
    """A plain dict of a :class:`lssviewer.model.ScanPoint` (index, theta, log_likelihood, stderr,
    box_log_likelihood, draws)."""
    box = getattr(pt, "box_log_likelihood", None)
    draws = getattr(pt, "draws", None)
    return {"index": int(pt.index), "theta": tuple(float(t) for t in np.asarray(pt.theta).ravel()),
            "log_likelihood": float(pt.log_likelihood), "stderr": float(pt.stderr),
            "box_log_likelihood": None if box is None else float(box),
            "draws": None if draws is None else [float(v) for v in draws]}


class InferenceWorker(QtCore.QObject):
    """A queue of model requests served by one background thread.

    Args:
        loader: ``loader(path, device) -> model`` implementing docs/model-api.md; default
            :func:`lssviewer.model.load_model`.
        summarize: ``summarize(grid_values, log_likelihood, temperature[, box_log_likelihood]) -> dict`` for 1-D
            profiles (temperature: the model's likelihood calibration, a float T, or a
            :class:`~lssviewer.model.likelihood.Tempering` with the box statistics' term per point when it tempers
            the network's term apart); default
            :func:`lssviewer.model.likelihood.summarize_profile` (2-D grids use
            :func:`lssviewer.model.likelihood.summarize_grid_2d`).
        stats_backend: an object with ``compute_sets(name, {label: catalogs}, **opts)`` and
            ``figure(name, results, reference)``; default :mod:`lssviewer.stats` and its ``plots``.
        state_interval: seconds between streamed intermediate sampling states.
    """

    started = QtCore.Signal(int, str)  # id, kind
    progress = QtCore.Signal(int, str, object)  # id, kind, payload tuple
    result = QtCore.Signal(int, str, object)  # id, kind, result
    failed = QtCore.Signal(int, str, str)  # id, kind, one-line message
    cancelled = QtCore.Signal(int, str)  # id, kind
    finished = QtCore.Signal(int, str)  # id, kind (after result/failed/cancelled)
    model_loaded = QtCore.Signal(object)  # ModelInfo
    busy_changed = QtCore.Signal(bool)

    def __init__(self, loader: Callable[[str | None, str | None], Any] | None = None,
                 summarize: Callable[[np.ndarray, np.ndarray, float], dict | None] | None = None,
                 stats_backend: Any = None, state_interval: float = STATE_INTERVAL_S,
                 parent: QtCore.QObject | None = None):
        super().__init__(parent)
        self._loader = loader or _default_loader
        self._summarize = summarize or _default_summarize
        self._stats = stats_backend or _DefaultStats()
        self.state_interval = float(state_interval)
        self._ids = itertools.count(1)
        self._queue: collections.deque[Request] = collections.deque()
        self._cond = threading.Condition()
        self._current: Request | None = None
        self._stopping = False
        self._model: Any = None  # touched only by the worker thread
        self.info: ModelInfo | None = None
        if sys.getswitchinterval() > GIL_SWITCH_INTERVAL_S:
            sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        self._thread = threading.Thread(target=self._loop, name="lssviewer-inference", daemon=True)
        self.gc_guard = start_guarded(self._thread)  # cyclic garbage is collected in the GUI thread only

    # ------------------------------------------------------------------ GUI-thread API
    def load_model(self, path: str | None = None, device: str | None = None) -> int:
        return self._submit("load_model", {"path": path, "device": device})

    def sample(self, omega_m: float, sigma_8: float, seed: int = 0, steps: int | None = None, n: int = 1,
               supersede: bool = True, stream: bool = True) -> int:
        """Queue a sample; with ``supersede`` older slider samples are dropped or cancelled."""
        return self._submit("sample", {"omega_m": float(omega_m), "sigma_8": float(sigma_8),
                                       "seed": int(seed), "steps": steps, "n": int(n), "stream": stream},
                            supersede=supersede)

    def scan(self, catalog: Any, grid: np.ndarray | None, n_noise: int = 16, seed: int = 0,
             meta: dict | None = None, zoom: dict | None = None) -> int:
        """Queue a likelihood scan of ``catalog`` over ``grid`` ((P, 2) of omega_m, sigma_8).

        With ``zoom`` ({"points": P, "coarse": C}) the grid is made by :func:`lssviewer.model.zoom.zoomed_grid_2d`
        instead (``grid`` is ignored): before each stage a progress payload ("stage", meta, n_points) carries
        the stage's grid (``meta`` plus "omega_m", "sigma_8", "stage", "reason", "n_noise"); points follow with
        indices in the panel's order (sigma_8 rows, omega_m columns: j * len(omega_m) + i)."""
        grid = None if grid is None else np.asarray(grid, dtype=float).reshape(-1, 2)
        if grid is None and not zoom:
            raise ValueError("a scan needs a grid or zoom settings")
        return self._submit("scan", {"catalog": catalog, "grid": grid, "n_noise": int(n_noise),
                                     "seed": int(seed), "meta": dict(meta or {}),
                                     "zoom": dict(zoom) if zoom else None})

    def stats(self, names: Sequence[str], omega_m: float, sigma_8: float, k: int,
              references: Sequence[Any], seed: int = 0, steps: int | None = None,
              options: dict | None = None) -> int:
        """Queue K model samples at (omega_m, sigma_8) and the statistics ``names`` vs ``references``."""
        return self._submit("stats", {"names": list(names), "omega_m": float(omega_m),
                                      "sigma_8": float(sigma_8), "k": int(k), "references": list(references),
                                      "seed": int(seed), "steps": steps, "options": dict(options or {})})

    def warm_up(self) -> int:
        """Queue the first-time imports of the likelihood summaries and the statistics code.

        Importing scipy.stats, scipy.spatial or matplotlib runs C-extension initialisation that
        holds the GIL for 0.1-0.5 s; done in the middle of a scan it stalls the window that long.
        The window queues this once, after its first sample, while the user is not yet busy."""
        return self._submit("warm_up", {})

    def call(self, fn: Callable[[Any, Callable[[], bool]], Any], kind: str = "call") -> int:
        """Queue ``fn(model, cancel)`` to run in the worker thread (for tools and tests)."""
        return self._submit(kind, {"fn": fn})

    def cancel(self, request_id: int) -> None:
        """Cancel one request, queued or running (no-op if it already finished)."""
        dropped = None
        with self._cond:
            for req in list(self._queue):
                if req.id == request_id:
                    self._queue.remove(req)
                    dropped = req
            if self._current is not None and self._current.id == request_id:
                self._current.cancel_event.set()
        if dropped is not None:
            self.cancelled.emit(dropped.id, dropped.kind)
            self.finished.emit(dropped.id, dropped.kind)

    def cancel_all(self, kinds: Iterable[str] | None = None) -> None:
        """Cancel every queued and the running request (of ``kinds`` only, if given)."""
        kinds = None if kinds is None else set(kinds)
        with self._cond:
            dropped = [r for r in self._queue if kinds is None or r.kind in kinds]
            for req in dropped:
                self._queue.remove(req)
            if self._current is not None and (kinds is None or self._current.kind in kinds):
                self._current.cancel_event.set()
        for req in dropped:
            self.cancelled.emit(req.id, req.kind)
            self.finished.emit(req.id, req.kind)

    def is_busy(self) -> bool:
        with self._cond:
            return self._current is not None or bool(self._queue)

    def pending(self) -> list[tuple[int, str]]:
        """(id, kind) of the running request, then of the queued ones."""
        with self._cond:
            reqs = ([self._current] if self._current else []) + list(self._queue)
            return [(r.id, r.kind) for r in reqs]

    def shutdown(self, timeout: float = 10.0) -> bool:
        """Cancel everything and stop the thread; True if it stopped within ``timeout`` seconds."""
        with self._cond:
            self._stopping = True
            self._queue.clear()
            if self._current is not None:
                self._current.cancel_event.set()
            self._cond.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():
            return False  # (the guard stays on while the thread runs)
        self.gc_guard.stop()
        return True

    # ------------------------------------------------------------------ internals
    def _submit(self, kind: str, params: dict, supersede: bool = False) -> int:
        req = Request(next(self._ids), kind, params, supersede)
        dropped: list[Request] = []
        with self._cond:
            if self._stopping:
                raise RuntimeError("the inference worker has been shut down")
            if supersede:
                dropped = [r for r in self._queue if r.supersede and r.kind == kind]
                for r in dropped:
                    self._queue.remove(r)
                if self._current is not None and self._current.supersede and self._current.kind == kind:
                    self._current.cancel_event.set()
            self._queue.append(req)
            self._cond.notify_all()
        for r in dropped:
            self.cancelled.emit(r.id, r.kind)
            self.finished.emit(r.id, r.kind)
        return req.id

    def _loop(self) -> None:
        lower_thread_priority()
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    self._current = None
                    break
                req = self._queue.popleft()
                self._current = req
            self.busy_changed.emit(True)
            self.started.emit(req.id, req.kind)
            try:
                if req.cancelled():
                    raise RequestCancelled
                out = getattr(self, f"_run_{req.kind}", self._run_call)(req)
                if req.cancelled():
                    raise RequestCancelled
            except BaseException as exc:  # noqa: BLE001 - every failure is reported, the loop goes on
                if req.cancelled() or isinstance(exc, RequestCancelled) or type(exc).__name__ == "Cancelled":
                    self.cancelled.emit(req.id, req.kind)
                else:
                    self.failed.emit(req.id, req.kind, error_message(exc))
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
            else:
                self.result.emit(req.id, req.kind, out)
            finally:
                with self._cond:
                    self._current = None
                    idle = not self._queue
                self.finished.emit(req.id, req.kind)
                if idle:
                    self.busy_changed.emit(False)
        self._model = None

    def _need_model(self) -> Any:
        if self._model is None:
            from lssviewer.errors import LssviewerError

            raise LssviewerError("no model is loaded (Model > Load model...)")
        return self._model

    def _run_load_model(self, req: Request) -> ModelInfo:
        path, device = req.params["path"], req.params["device"]
        model = self._loader(path, device)
        if str(model.device).startswith("cpu"):
            _leave_a_core_for_the_gui()
        info = ModelInfo(prior=model.prior, n_halos=int(model.n_halos), box_size=float(model.box_size),
                         redshift=float(model.redshift), device=str(model.device),
                         default_steps=int(model.default_steps), card=dict(model.card or {}),
                         path=None if path is None else str(path))
        self._model, self.info = model, info
        self.model_loaded.emit(info)
        return info

    def _sampling_progress(self, req: Request, stream: bool) -> Callable[[int, int, Any], None]:
        last = [-np.inf]
        last_step = [-np.inf]

        def progress(step: int, total: int, state: Any = None) -> None:
            now = time.perf_counter()
            if now - last_step[0] >= STEP_INTERVAL_S or step >= total:
                last_step[0] = now
                self.progress.emit(req.id, req.kind, ("step", int(step), int(total)))
            if stream and state is not None and (now - last[0] >= self.state_interval or step >= total):
                last[0] = now
                arr = np.array(np.asarray(state)[0], dtype=np.float32)  # copy: the model may reuse it
                self.progress.emit(req.id, req.kind, ("state", int(step), int(total), arr))
            if req.cancelled():
                raise RequestCancelled

        return progress

    def _run_sample(self, req: Request) -> list:
        p = req.params
        model = self._need_model()
        return model.sample(p["omega_m"], p["sigma_8"], n=p["n"], seed=p["seed"], steps=p["steps"],
                            progress=self._sampling_progress(req, p["stream"]), cancel=req.cancelled)

    def _run_scan(self, req: Request) -> dict:
        p = req.params
        if p.get("zoom"):
            return self._run_zoomed_scan(req)
        model = self._need_model()
        points = []
        for pt in model.scan(p["catalog"], p["grid"], n_noise=p["n_noise"], seed=p["seed"],
                             cancel=req.cancelled):
            d = scan_point_dict(pt)
            points.append(d)
            self.progress.emit(req.id, req.kind, ("point", d, len(p["grid"])))
            if req.cancelled():
                raise RequestCancelled
        points.sort(key=lambda d: d["index"])
        complete = len(points) == len(p["grid"])
        return {"points": points, "summary": self._scan_summary(model, points, p["meta"], complete),
                "meta": p["meta"]}

    def _run_zoomed_scan(self, req: Request) -> dict:
        from lssviewer.model.zoom import CUT, GridStage, assess, zoomed_grid_2d

        p = req.params
        model = self._need_model()
        tempering = grid_tempering(model)
        meta: dict = {}
        stages: list[dict] = []
        points: list[dict] = []
        for ev in zoomed_grid_2d(model, p["catalog"], points=int(p["zoom"]["points"]),
                                 coarse=int(p["zoom"].get("coarse", 7)), n_noise=p["n_noise"], seed=p["seed"],
                                 tempering=tempering, cancel=req.cancelled):
            if isinstance(ev, GridStage):
                meta = {**p["meta"], "mode": "grid", "axis": None, "omega_m": ev.omega_m.tolist(),
                        "sigma_8": ev.sigma_8.tolist(), "stage": ev.stage, "reason": ev.reason,
                        "n_noise": ev.n_noise}
                stages.append(meta)
                points = []
                self.progress.emit(req.id, req.kind, ("stage", meta, ev.omega_m.size * ev.sigma_8.size))
                continue
            i, j = divmod(int(ev.index), len(meta["sigma_8"]))
            d = scan_point_dict(ev)
            d["index"] = j * len(meta["omega_m"]) + i  # the panel's order: sigma_8 rows, omega_m columns
            points.append(d)
            self.progress.emit(req.id, req.kind, ("point", d, len(meta["omega_m"]) * len(meta["sigma_8"])))
            if req.cancelled():
                raise RequestCancelled
        points.sort(key=lambda d: d["index"])
        om, s8 = np.asarray(meta["omega_m"]), np.asarray(meta["sigma_8"])
        complete = len(points) == om.size * s8.size
        summary = self._scan_summary(model, points, meta, complete)
        cut = False
        if summary is not None and "tempered_log_likelihood" in summary:  # judged on the surface it summarised
            cut = assess(om, s8, np.asarray(summary["tempered_log_likelihood"]), model.prior.bounds()) == CUT
        return {"points": points, "summary": summary, "meta": meta, "stages": stages, "window_cut": cut}

    def _scan_summary(self, model: Any, points: list[dict], meta: dict, complete: bool) -> dict | None:
        """MAP and intervals of a finished scan (None while incomplete); a calibrated model's summaries use
        a tempered log L (the points keep the raw ELBO): a 1-D profile :func:`profile_tempering`, a 2-D grid
        :func:`grid_tempering`. With the points' noise draws, ``stderr_difference``: the standard error of each
        point's raw log L minus the highest one's (1-D: in the points' order; 2-D: [omega_m index][sigma_8 index],
        as ``tempered_log_likelihood``)."""
        if not complete:
            return None
        summary = self._summary_of(model, points, meta)
        if summary is not None and "error" not in summary and points and all(d.get("draws") for d in points):
            try:
                from lssviewer.model.likelihood import difference_stderr

                logl = [d["log_likelihood"] for d in points]
                err = difference_stderr([d["draws"] for d in points], int(np.argmax(logl)))
                if meta.get("axis") is None and meta.get("mode") == "grid":  # as the summary's 2-D arrays: [om, s8]
                    err = err.reshape(len(meta["sigma_8"]), len(meta["omega_m"])).T
                summary["stderr_difference"] = err.tolist()
            except Exception:  # noqa: BLE001 - the error bars are extra; the summary stands without them
                pass
        return summary

    def _summary_of(self, model: Any, points: list[dict], meta: dict) -> dict | None:
        """The summary of a complete scan's points (see :meth:`_scan_summary`); ``{"error": ...}`` if it fails."""
        axis = meta.get("axis")
        logl = np.array([d["log_likelihood"] for d in points])
        try:
            if axis is not None:
                tempering = profile_tempering(model, ("omega_m", "sigma_8")[axis])
                values = np.array([d["theta"][axis] for d in points])
                if not tempering.network_only:  # a plain T: summarizers of the older contract take a float
                    return self._summarize(values, logl, tempering.temperature)
                box = [d.get("box_log_likelihood") for d in points]
                return self._summarize(values, logl, tempering, None if None in box else np.array(box))
            if meta.get("mode") == "grid":
                om, s8 = np.asarray(meta["omega_m"]), np.asarray(meta["sigma_8"])
                # grid rows run over sigma_8 (slow) and omega_m (fast): L[i_s8, j_om] -> [j_om, i_s8]
                tempering = grid_tempering(model)
                box = None
                if tempering.network_only:
                    box = np.array([np.nan if d.get("box_log_likelihood") is None else d["box_log_likelihood"]
                                    for d in points]).reshape(len(s8), len(om)).T
                return _default_summarize_2d(om, s8, logl.reshape(len(s8), len(om)).T, tempering, box)
        except Exception as exc:  # noqa: BLE001 - the points are still worth showing
            return {"error": error_message(exc)}
        return None

    def _run_stats(self, req: Request) -> dict:
        import matplotlib

        if "matplotlib.pyplot" not in sys.modules:
            matplotlib.use("Agg")  # pyplot figures made off the GUI thread must never open windows
        p = req.params
        model = self._need_model()
        samples = model.sample(p["omega_m"], p["sigma_8"], n=p["k"], seed=p["seed"], steps=p["steps"],
                               progress=self._sampling_progress(req, False), cancel=req.cancelled)
        refs = p["references"]
        figures = {}
        for name in p["names"]:
            if req.cancelled():
                raise RequestCancelled
            try:
                model_label, sim_label = "model", "simulations"  # the figure adds the counts
                sets = {model_label: samples, **({sim_label: refs} if refs else {})}
                results = self._stats.compute_sets(name, sets, **p["options"])
                fig = self._stats.figure(name, results, reference=sim_label if refs else model_label)
            except Exception as exc:  # noqa: BLE001 - one failing statistic must not stop the others
                self.progress.emit(req.id, req.kind, ("stat_error", name, error_message(exc)))
                continue
            figures[name] = fig
            self.progress.emit(req.id, req.kind, ("stat", name, fig))
        return figures

    def _run_warm_up(self, req: Request) -> list[str]:
        import importlib

        done = []
        for name in ("scipy.interpolate", "scipy.stats", "scipy.spatial", "lssviewer.model.likelihood",
                     "matplotlib.figure", "matplotlib.backends.backend_agg", "lssviewer.stats",
                     "lssviewer.stats.plots"):
            if req.cancelled():
                break
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - a module that fails here fails with a message when used
                continue
            done.append(name)
        grid = np.linspace(0.0, 1.0, 5)
        try:  # the first call also builds scipy's distribution objects
            self._summarize(grid, -((grid - 0.5) ** 2), 1.0)
            _default_summarize_2d(grid, grid, -np.add.outer((grid - 0.5) ** 2, (grid - 0.5) ** 2))
        except Exception:  # noqa: BLE001 - a warm-up failure only costs speed later
            pass
        return done

    def _run_call(self, req: Request) -> Any:
        fn = req.params.get("fn")
        if fn is None:
            raise RuntimeError(f"unknown request kind {req.kind!r}")
        return fn(self._model, req.cancelled)
