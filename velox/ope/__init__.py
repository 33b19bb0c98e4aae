"""Off-policy evaluation over logged decisions: IPS, SNIPS, doubly robust and replay.

Numpy only. Each estimator takes one array entry per logged decision and returns an
`Estimate` with a seeded bootstrap confidence interval and Kish's effective sample size.
"""

from velox.ope.base import Estimate, kish_ess
from velox.ope.bootstrap import bootstrap_ratio_ci
from velox.ope.doubly_robust import doubly_robust
from velox.ope.ips import ips
from velox.ope.replay import replay
from velox.ope.snips import snips

__all__ = [
    "Estimate",
    "bootstrap_ratio_ci",
    "doubly_robust",
    "ips",
    "kish_ess",
    "replay",
    "snips",
]
