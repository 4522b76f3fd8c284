"""The one maker of random model inputs (parity checks, drift, latency, smoke calibration).

Standard-normal float32 (N, 3, S, S): what a normalised crop looks like to the first layer, so
activations land in realistic ranges; seeded, so two runs (or two artifacts) see the same tensor.
"""

from __future__ import annotations

import numpy as np

from mnn_edge.artifact import INPUT_SIZE


def random_input(batch: int, size: int = INPUT_SIZE, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, 3, size, size)).astype(np.float32)
