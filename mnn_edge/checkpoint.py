"""Checkpoints: weights plus everything needed to use them (L, normalisation, training config).

Saved with ``torch.save`` as plain tensors and builtin types so that ``torch.load(...,
weights_only=True)`` reads them: a checkpoint never executes code when loaded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mnn_edge.artifact import DEFAULT_MEAN, DEFAULT_STD, ModelKind, ModelMetadata, Precision, landmark_scheme_for
from mnn_edge.errors import MnnEdgeError
from mnn_edge.fileio import atomic_path, require_file, sha256_file
from mnn_edge.model.network import MNN

FORMAT = "mnn-edge-checkpoint-1"


@dataclass
class Checkpoint:
    model: MNN
    mean: tuple[float, float, float] = DEFAULT_MEAN
    std: tuple[float, float, float] = DEFAULT_STD
    landmark_scheme: str = "ibug68"
    config: dict = field(default_factory=dict)  # training configuration, for the record
    state: dict = field(default_factory=dict)  # optimizer/scheduler/epoch, for resuming
    sha256: str = ""  # of the file it was loaded from

    def metadata(self, kind: ModelKind, outputs: tuple[str, ...], extra: dict | None = None) -> ModelMetadata:
        """What an FP32 artifact of these weights says about itself (ONNX export, PyTorch runner)."""
        return ModelMetadata(kind=kind, num_landmarks=self.model.num_landmarks, mean=tuple(self.mean),
                             std=tuple(self.std), landmark_scheme=self.landmark_scheme, outputs=tuple(outputs),
                             precision=Precision.FP32, checkpoint_sha256=self.sha256, extra=dict(extra or {}))


def save_checkpoint(ckpt: Checkpoint, path: str | os.PathLike, half: bool = False) -> None:
    """Write atomically; ``half`` stores float weights as float16 (a shipped starter model)."""
    weights = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().clone()
               for k, v in ckpt.model.state_dict().items()}
    payload = {
        "format": FORMAT,
        "num_landmarks": ckpt.model.num_landmarks,
        "landmark_scheme": ckpt.landmark_scheme,
        "mean": list(ckpt.mean),
        "std": list(ckpt.std),
        "config": ckpt.config,
        "state": ckpt.state,
        "weights": weights,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | os.PathLike, num_landmarks: int | None = None) -> Checkpoint:
    """Load and validate a checkpoint; ``num_landmarks`` (if given) must match the file's L."""
    path = require_file(path, "checkpoint")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for truncated/foreign files
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise MnnEdgeError(f"{path} is not a readable mnn-edge checkpoint ({type(e).__name__}: {first[:200]})") from e
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise MnnEdgeError(f"{path} is not an mnn-edge checkpoint (missing format tag '{FORMAT}')")
    n = int(payload["num_landmarks"])
    if num_landmarks is not None and num_landmarks != n:
        raise MnnEdgeError(f"{path} was trained with L = {n} landmarks, but L = {num_landmarks} was requested")
    model = MNN(n)
    weights = {k: v.float() if v.is_floating_point() else v for k, v in payload["weights"].items()}
    mismatch = _state_mismatch(model.state_dict(), weights)
    if mismatch:
        raise MnnEdgeError(f"{path}: weights do not fit MNN(L={n}): {mismatch}")
    bad = [k for k, v in weights.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise MnnEdgeError(f"{path}: {len(bad)} weight tensor(s) hold NaN or infinite values (e.g. {bad[0]}): the "
                           "training run diverged; use an earlier checkpoint or a lower learning rate")
    model.load_state_dict(weights)
    model.eval()
    return Checkpoint(model=model, mean=tuple(payload["mean"]), std=tuple(payload["std"]),
                      landmark_scheme=payload.get("landmark_scheme", landmark_scheme_for(n)),
                      config=payload.get("config", {}), state=payload.get("state", {}),
                      sha256=sha256_file(path))


def _state_mismatch(expected: dict, given: dict) -> str:
    """'' when ``given`` fits ``expected``; else what does not, with an example of each kind."""
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    shapes = [f"{k} {tuple(given[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
              if k in given and tuple(given[k].shape) != tuple(v.shape)]
    parts = [f"{len(items)} {what} (e.g. {items[0]})" for what, items in
             (("missing", missing), ("unexpected", unexpected), ("of another shape", shapes)) if items]
    return ", ".join(parts)


def default_checkpoint_path() -> Path:
    """The starter checkpoint shipped inside the package (trained on synthetic faces only)."""
    return Path(__file__).parent / "assets" / "mnn_starter.pt"
