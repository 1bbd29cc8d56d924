"""The metric functions (``from handzoo import metrics``): :mod:`handzoo.scoring` re-exported.

The implementations, their conventions and what "official" means are in
:mod:`handzoo.scoring` (alignment, joint errors, mesh metrics, reporting).
"""

from __future__ import annotations

from handzoo.scoring import *  # noqa: F403
from handzoo.scoring import __all__ as __all__
