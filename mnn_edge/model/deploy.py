"""The inference graphs that artifacts contain, shared by ONNX export and the PyTorch runner.

Both backends therefore compute the same named outputs from the same modules:
pose model -> ``pose``; full model -> ``pose``, ``pose_proj``, ``landmarks``, ``visibility``
(and ``heatmaps`` in debug exports).
"""

from __future__ import annotations

import torch
from torch import nn

from mnn_edge.artifact import ModelKind
from mnn_edge.model.decode import LandmarkDecoder
from mnn_edge.model.network import MNN, PoseModel


class DeployPose(nn.Module):
    output_names = ("pose",)

    def __init__(self, model: MNN):
        super().__init__()
        self.net = PoseModel.from_full(model)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (self.net(image)["pose"],)


class DeployFull(nn.Module):
    def __init__(self, model: MNN, keep_heatmaps: bool = False):
        super().__init__()
        self.net = model
        self.decode = LandmarkDecoder()
        self.keep_heatmaps = keep_heatmaps
        self.output_names = ("pose", "pose_proj", "landmarks", "visibility") + (("heatmaps",) if keep_heatmaps else ())

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.net(image)
        landmarks, prob = self.decode(out["heatmap_logits"])
        result = (out["pose"], out["pose_proj"], landmarks, torch.sigmoid(out["visibility_logits"]))
        if self.keep_heatmaps:
            result += (prob.reshape(out["heatmap_logits"].shape),)
        return result


def deploy_module(model: MNN, kind: ModelKind, keep_heatmaps: bool = False) -> nn.Module:
    module = DeployPose(model) if kind is ModelKind.POSE else DeployFull(model, keep_heatmaps)
    return module.eval()
