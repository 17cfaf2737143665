"""The GUI-thread garbage collector: while a worker thread allocates, cyclic garbage is collected in the GUI thread."""

from __future__ import annotations

import gc
import threading
import weakref

import pytest

pytest.importorskip("pytestqt")
from PySide6 import QtCore  # noqa: E402

from lssviewer.gui import gc_guard  # noqa: E402
from lssviewer.gui.gc_guard import MainThreadCollector  # noqa: E402


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def _allocating_thread(stop: threading.Event, made: list) -> threading.Thread:
    """A stand-in for the inference worker: allocates cyclic garbage (well past the gen-0 threshold) until told."""

    def run() -> None:
        while not stop.is_set():
            for _ in range(2000):
                _Node()
            made.append(1)
            stop.wait(0.002)

    return threading.Thread(target=run, daemon=True)


def _collections_by_thread(run_for_ms: int, qtbot) -> tuple[set[int], int]:
    """Run the allocating thread for ``run_for_ms`` while the Qt event loop spins; (threads that collected, count)."""
    threads: list[int] = []

    def note(phase: str, info: dict) -> None:
        if phase == "start":
            threads.append(threading.get_ident())

    stop, made = threading.Event(), []
    worker = _allocating_thread(stop, made)
    gc.callbacks.append(note)
    try:
        worker.start()
        qtbot.wait(run_for_ms)
    finally:
        stop.set()
        worker.join(5)
        gc.callbacks.remove(note)
    assert made, "the allocating thread did not run"
    return set(threads), len(threads)


def test_without_a_guard_the_worker_thread_collects(qtbot):
    """The hazard the guard exists for (and proof the next test can see it): CPython collects in whichever thread
    crosses the threshold, here the allocating one."""
    assert not gc_guard.active() and gc.isenabled()
    threads, n = _collections_by_thread(400, qtbot)
    assert n > 0
    assert threads - {threading.get_ident()}, "expected collections in the allocating thread"


class _QtHolder:
    """A Qt object inside a reference cycle that notes the thread its destruction runs in."""

    def __init__(self, where: list) -> None:
        self.obj = QtCore.QObject()
        self.where = where
        self.me = self

    def __del__(self) -> None:
        self.where.append(threading.get_ident())


def test_with_a_guard_only_the_gui_thread_collects_and_garbage_is_freed(qtbot):
    guard = MainThreadCollector()
    guard.start()
    try:
        assert gc_guard.active() and not gc.isenabled()
        before = sum(gc_guard.collections)
        where: list[int] = []
        _QtHolder(where)  # cyclic garbage holding a QObject, made in the GUI thread as a closed dialog would be
        threads, n = _collections_by_thread(800, qtbot)
        assert n > 0, "the guard's timer never collected"
        assert threads == {threading.get_ident()}
        assert sum(gc_guard.collections) - before == n
        qtbot.waitUntil(lambda: bool(where), timeout=5000)
        assert where == [threading.get_ident()], "the Qt object was destroyed outside the GUI thread"
        # garbage made in another thread is freed within a few timer ticks
        box: list = []
        t = threading.Thread(target=lambda: box.append(weakref.ref(_Node())) or [_Node() for _ in range(2000)])
        t.start()
        t.join()
        ref = box[0]
        qtbot.waitUntil(lambda: ref() is None, timeout=5000)
    finally:
        guard.stop()
    assert not gc_guard.active() and gc.isenabled()


def test_guards_nest_and_restore_the_collector_as_it_was(qtbot):
    a, b = MainThreadCollector(), MainThreadCollector()
    a.start()
    b.start()
    a.start()  # idempotent
    a.stop()
    assert gc_guard.active() and not gc.isenabled(), "one guard is still on"
    b.stop()
    b.stop()  # idempotent
    assert not gc_guard.active() and gc.isenabled()
    gc.disable()  # a program that runs with the collector off keeps it off
    try:
        a.start()
        a.stop()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_lost_guard_keeps_the_timer_collecting_and_reset_forgets_it(qtbot):
    lost = MainThreadCollector()
    lost.start()
    del lost  # never stopped (its owner died): collection stays with the GUI-thread timer, it does not stop
    before = sum(gc_guard.collections)
    for _ in range(3000):
        _Node()
    qtbot.waitUntil(lambda: sum(gc_guard.collections) > before, timeout=5000)
    fresh = MainThreadCollector()
    fresh.start()
    assert gc_guard.reset() == 2 and not gc_guard.active() and gc.isenabled()
    assert not fresh.started
    newer = MainThreadCollector()
    newer.start()
    fresh.stop()  # a guard from before reset() must not release the newer one
    assert gc_guard.active() and newer.started
    newer.stop()
    assert not gc_guard.active() and gc.isenabled()


def test_freeze_now_keeps_long_lived_objects_out_of_collections(qtbot):
    guard = MainThreadCollector()
    guard.start()
    try:
        keep = [[i] for i in range(20_000)]  # long-lived objects made after the guard started
        assert len(gc.get_objects(2)) + len(gc.get_objects(1)) + len(gc.get_objects(0)) >= 20_000
        frozen = gc.get_freeze_count()
        gc_guard.freeze_now()
        assert gc.get_freeze_count() >= frozen + 20_000
        assert all(len(gc.get_objects(g)) < 20_000 for g in range(3))
    finally:
        guard.stop()
    assert gc.get_freeze_count() == 0 and keep


def test_generation_due_follows_cpythons_counters(monkeypatch):
    monkeypatch.setattr(gc, "get_threshold", lambda: (700, 10, 10))
    for counts, due in [((10, 0, 0), None), ((700, 0, 0), 0), ((700, 10, 0), 1), ((701, 10, 10), 2),
                        ((5, 10, 10), None)]:
        monkeypatch.setattr(gc, "get_count", lambda c=counts: c)
        assert gc_guard._generation_due() == due, counts
    monkeypatch.setattr(gc, "get_threshold", lambda: (0, 10, 10))  # gc.set_threshold(0): collection off
    monkeypatch.setattr(gc, "get_count", lambda: (10_000, 10, 10))
    assert gc_guard._generation_due() is None
    monkeypatch.setattr(gc, "get_threshold", lambda: (2000, 10, 0))  # Python 3.14's incremental collector
    monkeypatch.setattr(gc, "get_count", lambda: (2001, 0, 0))
    assert gc_guard._generation_due() == 1


def test_the_inference_worker_holds_a_guard_while_its_thread_runs(qtbot):
    from lssviewer.gui.worker import InferenceWorker

    w = InferenceWorker()
    try:
        assert w.gc_guard.started and gc_guard.active()
    finally:
        assert w.shutdown(timeout=10)
    assert not w.gc_guard.started and not gc_guard.active()


def test_the_likelihood_plot_thread_holds_a_guard_until_closed(qtbot):
    from lssviewer.gui.panels.likelihood import LikelihoodPanel

    panel = LikelihoodPanel()
    qtbot.addWidget(panel)
    assert gc_guard.active()
    panel.close_renderer()
    assert not gc_guard.active() and gc.isenabled()
