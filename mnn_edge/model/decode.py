"""Heatmap logits -> landmark coordinates, in the graph.

Soft-argmax: coordinates are the expectation of each landmark's spatial softmax. Chosen over
argmax + sub-pixel refinement because it is one Softmax and one MatMul against a constant grid:
no ArgMax/Gather with data-dependent indices (awkward for TensorRT and for INT8), it is sub-pixel
by construction, and it is exactly the distribution the L_CE(h) loss trains. Its known bias
(a multi-modal map averages its modes) shows as a landmark pulled toward the centre; the debug
export keeps raw heatmaps to see it.
"""

from __future__ import annotations

import torch
from torch import nn

from mnn_edge.artifact import INPUT_SIZE


class LandmarkDecoder(nn.Module):
    def __init__(self, size: int = INPUT_SIZE):
        super().__init__()
        ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float32),
                                torch.arange(size, dtype=torch.float32), indexing="ij")
        # Non-persistent: a constant of the graph, not a weight of the checkpoint.
        self.register_buffer("grid", torch.stack([xs.flatten(), ys.flatten()], dim=1), persistent=False)

    def forward(self, heatmap_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, L, H, W) logits -> (N, L, 2) x, y in crop pixels and (N, L, H*W) probabilities."""
        n, l_, h, w = heatmap_logits.shape
        prob = torch.softmax(heatmap_logits.reshape(n, l_, h * w), dim=-1)
        return torch.matmul(prob, self.grid), prob
