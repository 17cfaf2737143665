"""The one version string of lssviewer (shown by ``lssviewer --version``, the About dialog and checkpoints)."""

__version__ = "0.1.0"
