"""Crop pixels -> network input, exactly as the artifact's metadata says. numpy + OpenCV only."""

from __future__ import annotations

import numpy as np

from mnn_edge.artifact import ModelMetadata


def to_input(crops_rgb: np.ndarray, meta: ModelMetadata) -> np.ndarray:
    """(N, H, W, 3) or (H, W, 3) uint8 RGB crops of size ``meta.input_size`` -> (N, 3, H, W) float32."""
    x = np.asarray(crops_rgb)
    if x.ndim == 3:
        x = x[None]
    size = meta.input_size
    if x.shape[1:] != (size, size, 3):
        raise ValueError(f"expected crops of shape (N, {size}, {size}, 3), got {x.shape}")
    if meta.channel_order == "BGR":
        x = x[..., ::-1]
    mean = np.asarray(meta.mean, dtype=np.float32) * 255.0
    inv_std = 1.0 / (np.asarray(meta.std, dtype=np.float32) * 255.0)
    out = (x.astype(np.float32) - mean) * inv_std
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))
