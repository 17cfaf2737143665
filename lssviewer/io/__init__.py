"""Reading and writing halo catalogs: one module per format, one registry.

>>> from lssviewer import io
>>> catalogs = io.load("suite.h5")          # always a list of HaloCatalog
>>> io.save(catalogs, "suite.csv")          # format from the extension

See :mod:`lssviewer.io.registry` for the list of formats and how a format is picked.
"""

from lssviewer.io.registry import FORMATS, detect_format, load, load_one, save, writable_formats

__all__ = ["FORMATS", "detect_format", "load", "load_one", "save", "writable_formats"]
