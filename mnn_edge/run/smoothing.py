"""One-Euro filter (Casiez, Roussel, Vogel, CHI 2012) for pose and landmarks across frames.

Off by default: the paper evaluates frames independently, and any smoothing adds lag. When on
(``--smooth``), it removes jitter on a still head while following fast turns: the cut-off
frequency rises with the signal's speed. One filter per track, over a flat vector.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OneEuroConfig:
    min_cutoff: float = 1.0  # Hz; lower = smoother when still, more lag
    beta: float = 0.05  # how fast the cut-off rises with speed (per unit/s)
    d_cutoff: float = 1.0  # Hz; cut-off of the speed estimate


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Filters a vector signal sampled at (possibly irregular) timestamps in seconds."""

    def __init__(self, cfg: OneEuroConfig = OneEuroConfig()):
        self.cfg = cfg
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._t is None or self._x.shape != x.shape or t <= self._t:
            # first sample (or a clock that went backwards / a shape change): start afresh
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x.copy()
        dt = t - self._t
        dx = (x - self._x) / dt
        a_d = _alpha(self.cfg.d_cutoff, dt)
        self._dx = a_d * dx + (1 - a_d) * self._dx
        cutoff = self.cfg.min_cutoff + self.cfg.beta * np.abs(self._dx)
        a = _alpha(cutoff, dt)
        self._x = a * x + (1 - a) * self._x
        self._t = t
        return self._x.copy()


class TrackSmoother:
    """One filter per track id for pose (6,) and landmarks (L, 2); forgets tracks that vanish."""

    def __init__(self, cfg: OneEuroConfig = OneEuroConfig()):
        self.cfg = cfg
        self._filters: dict[int, OneEuroFilter] = {}

    def smooth(self, track_id: int, t: float, pose: np.ndarray,
               landmarks: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        f = self._filters.setdefault(track_id, OneEuroFilter(self.cfg))
        flat = pose if landmarks is None else np.concatenate([pose, landmarks.ravel()])
        out = f(flat, t)
        if landmarks is None:
            return out, None
        return out[: len(pose)], out[len(pose):].reshape(landmarks.shape)

    def keep_only(self, track_ids: set[int]) -> None:
        for tid in list(self._filters):
            if tid not in track_ids:
                del self._filters[tid]
