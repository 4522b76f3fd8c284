"""PyTorch reference backend for ``.pt`` checkpoints (the numbers every artifact is checked against)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mnn_edge.artifact import ModelKind, ModelMetadata
from mnn_edge.runtime.base import InputSpec, Runner


class TorchRunner(Runner):
    backend = "pytorch"

    def __init__(self, path: str | Path, device: str = "cpu", kind: ModelKind = ModelKind.FULL):
        super().__init__(path)
        import torch

        from mnn_edge.checkpoint import load_checkpoint
        from mnn_edge.model.deploy import deploy_module

        ckpt = load_checkpoint(self.path)
        self._torch = torch
        self._device = torch.device(device)
        self.device = str(self._device)
        self._module = deploy_module(ckpt.model, kind).to(self._device)
        self.metadata: ModelMetadata = ckpt.metadata(kind, self._module.output_names)
        size = self.metadata.input_size
        self.input_spec = InputSpec(self.metadata.input_name, (None, 3, size, size), np.dtype(np.float32))

    def _infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        with self._torch.inference_mode():
            outs = self._module(self._torch.from_numpy(batch).to(self._device))
        return {name: t.float().cpu().numpy() for name, t in zip(self._module.output_names, outs)}
