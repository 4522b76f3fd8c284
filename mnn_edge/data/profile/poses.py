"""Which pose a profiled face is turned to, and the exact label that follows.

A target keeps the source's roll and draws yaw and pitch; the rotation applied is
``Q = R(target) R(source)^T`` (y-up frame), so the label ``Q R(source)`` is the target itself,
as exact as the source's own pose label. Turning a face *towards* its hidden side would show
pixels the photo never had (the far cheek, smeared), so a face already turned more than
:data:`FRONTAL_DEG` is only turned further the same way, as 300W-LP's profiles are.
"""

from __future__ import annotations

import numpy as np

from mnn_edge.geometry import euler_to_matrix

FRONTAL_DEG = 10.0
MIN_TARGET_YAW = 20.0  # the real frames already cover near-frontal faces


def draw_target(rng: np.random.Generator, source: np.ndarray, max_yaw: float, max_pitch: float) -> np.ndarray:
    """(yaw, pitch, roll) of one render: |yaw| in [20, max_yaw], pitch in [-max_pitch, max_pitch]."""
    yaw0, _, roll0 = (float(v) for v in source)
    u = rng.uniform(size=3)
    sign = np.sign(yaw0) if abs(yaw0) > FRONTAL_DEG else (1.0 if u[0] < 0.5 else -1.0)
    yaw = sign * (MIN_TARGET_YAW + (max_yaw - MIN_TARGET_YAW) * u[1])
    pitch = (2 * u[2] - 1) * max_pitch
    return np.array([yaw, pitch, roll0])


def rotation_between(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The y-up rotation Q with Q R(source) = R(target)."""
    return euler_to_matrix(*target) @ euler_to_matrix(*source).T
