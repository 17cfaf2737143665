"""Errors that carry a user-facing one-line message.

Every problem caused by user input (a bad file, a parameter outside the prior, ...) is raised as a
:class:`LssviewerError` (or a subclass). The CLI prints it as ``lssviewer: error: FILE: message``
and the GUI shows the same line in a dialog; neither shows a traceback.
"""

from __future__ import annotations

import os


class LssviewerError(Exception):
    """A user-facing error: ``str(err)`` is one line, prefixed with the file when there is one."""

    def __init__(self, message: str, path: str | os.PathLike[str] | None = None):
        self.message = " ".join(str(message).split())  # always one line
        self.path = None if path is None else os.fspath(path)
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def with_path(self, path: str | os.PathLike[str]) -> LssviewerError:
        """Return the same error attributed to ``path`` (kept if it already names a file)."""
        if self.path is None:
            self.path = os.fspath(path)
        return self


class CatalogError(LssviewerError):
    """A catalog's content is invalid (shapes, non-finite values, masses, box)."""


class FormatError(LssviewerError):
    """A file cannot be read or written in the requested/detected format."""


class ParameterError(LssviewerError):
    """A parameter is invalid (e.g. cosmology outside the prior box, negative box size)."""
