"""Old home of :mod:`embedlab._training_common`, re-exported for the modules still using it."""

# owned by another change: training/ctr.py and training/distributed.py import from here
from embedlab._training_common import forked_rng, progress_bar

__all__ = ["forked_rng", "progress_bar"]
