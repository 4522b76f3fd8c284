"""Torch view of a dataset: ``read_dataset`` samples -> standard crops -> tensors with label masks.

Every label comes with a validity mask so one batch can mix sources that lack some labels (AFLW2000
has no visibility, 300W has no pose): the losses average over what is there.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from mnn_edge.artifact import DEFAULT_NUM_LANDMARKS, INPUT_SIZE
from mnn_edge.data.sample import CropItem, FaceSample


def normalise(image_rgb: np.ndarray, mean: tuple[float, float, float], std: tuple[float, float, float]) -> np.ndarray:
    """(S, S, 3) uint8 RGB -> (3, S, S) float32, ``(x / 255 - mean) / std`` (as preprocess.to_input)."""
    m = np.asarray(mean, dtype=np.float32) * 255.0
    s = 1.0 / (np.asarray(std, dtype=np.float32) * 255.0)
    return np.ascontiguousarray(((image_rgb.astype(np.float32) - m) * s).transpose(2, 0, 1))


def item_to_tensors(item: CropItem, num_landmarks: int, mean, std) -> dict[str, torch.Tensor]:
    """One crop -> the tensors the losses read (missing labels are zero with a False mask)."""
    n = num_landmarks
    lnd = np.zeros((n, 2), np.float32)
    lnd_valid = np.zeros(n, bool)
    if item.landmarks is not None and len(item.landmarks) == n:
        raw = np.asarray(item.landmarks, dtype=np.float32)
        lnd_valid = np.all(np.isfinite(raw), axis=1)
        lnd[lnd_valid] = raw[lnd_valid]
    vis = np.zeros(n, np.float32)
    vis_valid = np.zeros(n, bool)
    if item.visibility is not None and len(item.visibility) == n:
        raw = np.asarray(item.visibility, dtype=np.float32)
        vis_valid = np.isfinite(raw)
        vis[vis_valid] = raw[vis_valid]
    pose = np.zeros(6, np.float32)
    pose_valid = item.pose is not None and bool(np.all(np.isfinite(item.pose)))
    if pose_valid:
        pose[:] = item.pose
    return {
        "image": torch.from_numpy(normalise(item.image, mean, std)),
        "pose": torch.from_numpy(pose),
        "pose_valid": torch.tensor(pose_valid),
        "landmarks": torch.from_numpy(lnd),
        "lnd_valid": torch.from_numpy(lnd_valid),
        "visibility": torch.from_numpy(vis),
        "vis_valid": torch.from_numpy(vis_valid),
    }


class CropDataset(Dataset):
    """Standard crops of ``samples`` with optional augmentation, reproducible for (seed, epoch, index)."""

    def __init__(self, samples: list[FaceSample], num_landmarks: int = DEFAULT_NUM_LANDMARKS, size: int = INPUT_SIZE,
                 mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), augment=None, seed: int = 0):
        self.samples = samples
        self.num_landmarks = num_landmarks
        self.size = size
        self.mean, self.std = tuple(mean), tuple(std)
        self.augment = augment
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """A new augmentation draw per epoch (DataLoader workers copy the dataset each epoch)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        from mnn_edge.data.crop import crop_sample

        rng = np.random.default_rng((self.seed, self.epoch, index))
        item = crop_sample(self.samples[index], size=self.size, augment=self.augment, rng=rng)
        return item_to_tensors(item, self.num_landmarks, self.mean, self.std)
