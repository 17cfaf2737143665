"""The lssviewer desktop app (PySide6 + PyVista).

The GUI owns no science: it calls :mod:`lssviewer.io` to read and write catalogs,
:mod:`lssviewer.model` (in one background worker thread) to sample and score catalogs, and
:mod:`lssviewer.stats` to compute and plot summary statistics. Start it with
:func:`lssviewer.gui.app.run_app` or the ``lssviewer`` command.

Only :mod:`lssviewer.gui.session` and :mod:`lssviewer.gui.export` are importable without Qt.
"""
