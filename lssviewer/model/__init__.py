"""The point-cloud diffusion model p(halo catalog | Omega_m, sigma_8) (see docs/model.md).

Public API (docs/model-api.md)::

    from lssviewer.model import load_model, DiffusionModel, Cancelled, ScanPoint

Modules: :mod:`~lssviewer.model.features` (standardisation, periodic box), :mod:`~.schedule`
(learned log-SNR), :mod:`~.network` (set transformer), :mod:`~.vdm` (the VDM and its loss terms),
:mod:`~.sampler`, :mod:`~.likelihood` (ELBO scans and posterior summaries), :mod:`~.train`,
:mod:`~.checkpoint`, :mod:`~.data`, :mod:`~.api`.
"""

from lssviewer.model.api import DiffusionModel, default_model_dir, load_model
from lssviewer.model.likelihood import ScanPoint
from lssviewer.model.sampler import Cancelled

__all__ = ["load_model", "DiffusionModel", "Cancelled", "ScanPoint", "default_model_dir"]
