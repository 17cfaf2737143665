"""Run Python's cyclic garbage collector in the GUI thread only, while a background worker exists.

Why: CPython runs an automatic collection in whichever thread happens to allocate when a generation's threshold is
crossed. With the inference worker allocating (torch, numpy) most of the time, that is usually the worker thread.
A collection that finds an unreachable reference cycle holding a Qt wrapper (a closed dialog, a widget connected to
a lambda, a closed window) then destroys the C++ object in the worker thread, and Qt objects must be destroyed in
the thread they live in: the process can crash later, inside Qt's event loop, far from the cause (seen once in CI).

How: while a guard is active, automatic collection is off and a 0.2 s timer in the GUI thread collects instead,
choosing the generation from the same counters and thresholds CPython uses (``gc.get_count`` keeps counting while
the collector is disabled). A full collection of a process that has imported torch, VTK and scipy takes ~0.2 s,
which would stall the window; so the guard ``gc.freeze()``-s everything tracked at that moment (modules, functions,
classes: objects that live as long as the process), and full collections traverse only what was made since
(measured by ``benchmarks/bench_gui.py``: see its "collections" rows). Cyclic garbage not yet collected when the guard
starts is frozen with the rest and freed when the last guard stops (collecting first would cost the ~0.2 s at
launch).

Guards nest (one per worker: tests open many windows): the first one to start freezes and disables, the last one to
stop unfreezes and restores the collector as it was.
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
_was_enabled = True


def _generation_due() -> int | None:
    """The oldest generation CPython would collect now from ``gc.get_count()`` and ``gc.get_threshold()``, or None."""
    counts, thresholds = gc.get_count(), gc.get_threshold()
    if thresholds[0] <= 0 or counts[0] < thresholds[0]:
        return None
    for gen in (2, 1):
        if thresholds[gen] > 0 and counts[gen] >= thresholds[gen]:
            return gen
    return 0


class MainThreadCollector(QtCore.QObject):
    """Collects cyclic garbage on a GUI-thread timer while started; see the module docstring.

    Create it in the GUI thread (its timer fires there), :meth:`start` it before starting a worker thread and
    :meth:`stop` it after the worker has stopped. ``collections`` counts the collections it ran, per generation.
    """

    def __init__(self, parent: QtCore.QObject | None = None, interval_ms: int = CHECK_INTERVAL_MS):
        super().__init__(parent)
        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(int(interval_ms))
        self._timer.timeout.connect(self.collect_if_due)
        self._started = False
        self.collections = [0, 0, 0]

    @property
    def started(self) -> bool:
        return self._started

    def start(self) -> None:
        """Take over collection from CPython (idempotent)."""
        global _active, _was_enabled
        if self._started:
            return
        with _lock:
            if _active == 0:
                _was_enabled = gc.isenabled()
                gc.disable()
                gc.freeze()  # (no collection first: ~0.2 s at launch; what is garbage now waits for unfreeze)
            _active += 1
        self._started = True
        self._timer.start()

    def stop(self) -> None:
        """Give collection back to CPython once the last guard stops (idempotent)."""
        global _active
        if not self._started:
            return
        self._timer.stop()
        self._started = False
        with _lock:
            if _active == 0:
                return  # (after reset())
            _active -= 1
            if _active == 0:
                gc.unfreeze()
                if _was_enabled:
                    gc.enable()

    def collect_if_due(self) -> int | None:
        """Run the collection CPython would have run by now, in this (the GUI) thread; returns its generation."""
        gen = _generation_due()
        if gen is not None:
            gc.collect(gen)
            self.collections[gen] += 1
        return gen


def reset() -> int:
    """Hand collection back to CPython whatever guards are on (for test teardown); returns how many were on."""
    global _active
    with _lock:
        n, _active = _active, 0
        if n:
            gc.unfreeze()
            if _was_enabled:
                gc.enable()
    return n


def active() -> bool:
    """True while at least one guard is started (automatic collection is then off)."""
    return _active > 0
