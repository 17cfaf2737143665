"""lssviewer: field-level generative models of dark-matter halo catalogs.

Core layers (no Qt): :mod:`lssviewer.catalog`, :mod:`lssviewer.cosmology`, :mod:`lssviewer.io`,
:mod:`lssviewer.sim`, :mod:`lssviewer.stats`, :mod:`lssviewer.model`. The desktop app lives in
:mod:`lssviewer.gui`.
"""

from lssviewer._version import __version__
from lssviewer.catalog import HaloCatalog
from lssviewer.cosmology import Cosmology, PriorBox
from lssviewer.errors import LssviewerError

__all__ = ["__version__", "HaloCatalog", "Cosmology", "PriorBox", "LssviewerError"]
