"""Run Python's cyclic garbage collector in the GUI thread only, while a background thread of the window exists.

Why: CPython runs an automatic collection in whichever thread happens to allocate when a generation's threshold is
crossed. With the inference worker allocating (torch, numpy) most of the time, that is usually the worker thread.
A collection that finds an unreachable reference cycle holding a Qt wrapper (a closed dialog, a widget connected to
a lambda, a closed window) then destroys the C++ object in the worker thread, and Qt objects must be destroyed in
the thread they live in: the process can crash later, inside Qt's event loop, far from the cause (seen once in CI).

How: while a guard is held, automatic collection is off and one 0.2 s timer in the GUI thread collects instead,
choosing the generation from the counters and thresholds CPython uses (``gc.get_count`` keeps counting while the
collector is disabled): a young collection when generation 0 is over its threshold, generation 1 every 10 of those,
a full collection every 10 of those (CPython skips some of these while few objects are new; the guard does not).
On Python >= 3.14 with the incremental collector (third threshold 0) it runs ``gc.collect(1)``, the young
generation plus an increment of the old one, as the automatic collector there does.

A full collection of a process that has imported torch, VTK and scipy takes ~0.2 s on 2 cores, which would stall the
window; so the first guard ``gc.freeze()``-s everything tracked when it starts (modules, classes, functions), and
:func:`freeze_now` does it again once the window's long-lived objects exist (the window calls it when the worker
has loaded the model and done its first-time imports): full collections then traverse only what was made since
(``benchmarks/bench_gui.py`` measures one). The price: reference cycles among frozen objects that become garbage
are freed only when the last guard is released (the window closes), and so is cyclic garbage not yet collected when
a freeze happens (collecting it first would cost the ~0.2 s).

Guards nest (the worker and the plot thread each hold one; tests open many windows): the first one acquired freezes
and disables, the last one released unfreezes, collects once in the GUI thread and restores the collector as it
was. (Unfreezing also undoes a ``gc.freeze()`` the host program made before the first guard.)
"""

from __future__ import annotations

import gc
import threading

from PySide6 import QtCore

#: Interval between two checks of the allocation counters (ms). CPython's gen-0 threshold (700 allocations) is
#: crossed many times a second by a busy worker; collecting at most every 0.2 s delays garbage by 0.2 s at most.
CHECK_INTERVAL_MS = 200

_lock = threading.Lock()
_active = 0
_epoch = 0  # bumped by reset(): guards started before it no longer count
_was_enabled = True
_timer: QtCore.QTimer | None = None
#: Collections run by the guard's timer since the process started, per generation argument of gc.collect.
collections = [0, 0, 0]


def _generation_due() -> int | None:
    """The generation to collect now from ``gc.get_count()`` and ``gc.get_threshold()``, or None."""
    counts, thresholds = gc.get_count(), gc.get_threshold()
    if thresholds[0] <= 0 or counts[0] < thresholds[0]:
        return None
    if thresholds[2] == 0:  # the incremental collector (Python 3.14): young generation + an increment of the old
        return 1
    for gen in (2, 1):
        if thresholds[gen] > 0 and counts[gen] >= thresholds[gen]:
            return gen
    return 0


def collect_if_due() -> int | None:
    """Run the collection that is due (see the module docstring) in the calling thread; returns its generation."""
    gen = _generation_due()
    if gen is not None:
        gc.collect(gen)
        collections[gen] += 1
    return gen


def _ensure_timer() -> QtCore.QTimer:
    """The one collecting timer, living in the application's (GUI) thread for the rest of the process."""
    global _timer
    if _timer is None:
        app = QtCore.QCoreApplication.instance()
        if app is None:
            raise RuntimeError("the GUI-thread garbage collector needs a QApplication")
        _timer = QtCore.QTimer(app)
        _timer.setInterval(CHECK_INTERVAL_MS)
        _timer.timeout.connect(collect_if_due)
    return _timer


class MainThreadCollector:
    """A guard: while started, cyclic garbage is collected only by the GUI-thread timer (see the module docstring).

    :meth:`start` it in the GUI thread before starting a background thread and :meth:`stop` it once that thread has
    stopped. Both are idempotent. A guard that is never stopped leaves collection with the timer (safe: nothing
    collects in other threads, nothing piles up), with the first freeze kept, until :func:`reset`.
    """

    def __init__(self) -> None:
        self._epoch: int | None = None  # the reset() epoch it was started in, None when stopped

    @property
    def started(self) -> bool:
        return self._epoch is not None and self._epoch == _epoch

    def start(self) -> None:
        global _active, _was_enabled
        if self.started:
            return
        if QtCore.QCoreApplication.instance() is None:
            return  # no Qt application, no GUI thread to protect (a worker used from a script)
        timer = _ensure_timer()
        with _lock:
            if _active == 0:
                _was_enabled = gc.isenabled()
                gc.disable()
                gc.freeze()  # (no collection first: ~0.2 s at launch; see the module docstring)
            _active += 1
            self._epoch = _epoch
        timer.start()

    def stop(self) -> None:
        if not self.started:
            self._epoch = None
            return
        self._epoch = None
        _release()


def start_guarded(thread: threading.Thread) -> MainThreadCollector:
    """Start a guard, then ``thread`` (released again if the thread cannot start); :meth:`stop` the returned guard
    once the thread has stopped."""
    guard = MainThreadCollector()
    guard.start()
    try:
        thread.start()
    except BaseException:
        guard.stop()
        raise
    return guard


def _release() -> None:
    global _active
    with _lock:
        _active -= 1
        last = _active == 0
        if last and _timer is not None:
            _timer.stop()
    if last:
        # the frozen cyclic garbage (closed windows' Qt objects among it) is collected here, in the GUI thread,
        # before CPython may collect in any thread again (~0.2 s, once, when the window closes)
        gc.unfreeze()
        gc.collect()
        if _was_enabled and _active == 0:
            gc.enable()


def freeze_now() -> None:
    """While a guard is held: collect the young generations and freeze everything tracked, so later full collections
    skip it. Call it once the long-lived objects exist (the model loaded, first-time imports done): ~10 ms, against
    ~0.2 s for each full collection that would traverse them."""
    with _lock:
        if _active == 0:
            return
    gc.collect(1)  # (outside the lock: finalizers run here)
    gc.freeze()


def reset() -> int:
    """Release every guard whatever its owner (for test teardown); returns how many were held."""
    global _active, _epoch
    with _lock:
        n = _active
        _epoch += 1
    if n:
        with _lock:
            _active = 1
        _release()
    return n


def active() -> bool:
    """True while at least one guard is held (automatic collection is then off)."""
    return _active > 0
