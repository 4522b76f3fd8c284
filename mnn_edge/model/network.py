"""MNN: the multi-task encoder-decoder of Valle et al. (TPAMI 2020), as read in ``shared/spec/MNN.md``.

Stages are numbered as in the supplementary tables (stage s works at 2**(s-1) pixels), so the
state dict reads ``encoder.stages.stage_9.*`` ... ``stage_2.*``, ``decoder.stage_2.*`` ...
``stage_9.*`` and the heads by the tables' names (``fc_pose``, ``fc_pose_proj``, ``fc_lnd``,
``fc_vis``); within a stage, modules are named by role (``entry``, ``fuse``, ``block.expand``),
not by the tables' per-layer names (``conv_9_1`` ...). ``mnn-info`` prints the per-stage table.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mnn_edge.artifact import DEFAULT_NUM_LANDMARKS, INPUT_SIZE, check_num_landmarks

STAGES = tuple(range(9, 0, -1))  # 9 (256 px) ... 1 (1 px)
BOTTLENECK = 64
# Raw head outputs are scaled into physical units inside the graph (no parameters), so every
# artifact, the checkpoint included, speaks degrees and crop pixels: yaw, pitch, roll in degrees;
# tx, ty in crop pixels (centre-relative offset added); tz = scale in crop px per mean-face unit.
POSE_SCALE = (90.0, 90.0, 90.0, 64.0, 64.0, 40.0)
POSE_OFFSET = (0.0, 0.0, 0.0, (INPUT_SIZE - 1) / 2.0, (INPUT_SIZE - 1) / 2.0, 100.0)


def stage_channels(stage: int) -> int:
    """Feature maps of a stage: 64 at 256 px, 128 at 128 px, 256 below."""
    return {9: 64, 8: 128}.get(stage, 256)


class ConvBNReLU(nn.Sequential):
    """Convolution (no bias) followed by BatchNorm and ReLU, as every trunk layer of MNN."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, transposed: bool = False):
        if transposed:
            conv = nn.ConvTranspose2d(c_in, c_out, kernel, stride=stride, bias=False)
        else:
            conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2 if stride == 1 else 0,
                             bias=False)
        super().__init__(conv, nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class Bottleneck(nn.Module):
    """1x1 C->64, kxk 64->64, 1x1 64->C; the caller adds the residual."""

    def __init__(self, channels: int, mid_kernel: int = 3):
        super().__init__()
        self.reduce = ConvBNReLU(channels, BOTTLENECK, 1)
        self.mid = ConvBNReLU(BOTTLENECK, BOTTLENECK, mid_kernel)
        self.expand = ConvBNReLU(BOTTLENECK, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.expand(self.mid(self.reduce(x)))


class EncoderStage(nn.Module):
    """conv_s_1 (1x1 at stage 9, 2x2 stride 2 below; max-pool at stage 1) + bottleneck + add."""

    def __init__(self, stage: int):
        super().__init__()
        c = stage_channels(stage)
        if stage == 9:
            self.entry: nn.Module = ConvBNReLU(3, c, 1)
        elif stage == 1:
            self.entry = nn.MaxPool2d(2)
        else:
            self.entry = ConvBNReLU(stage_channels(stage + 1), c, 2, stride=2)
        # conv_1_3 runs on a 1x1 map, where a padded 3x3 reduces to its centre: the paper's counts
        # only come out with a 1x1 there (spec, "Sizes").
        self.block = Bottleneck(c, mid_kernel=1 if stage == 1 else 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.entry(x)
        return x + self.block(x)


class DecoderStage(nn.Module):
    """concat(skip, up) -> conv_s_6 1x1 -> bottleneck + add -> conv_s_10 2x2 transposed (s < 9)."""

    def __init__(self, stage: int):
        super().__init__()
        c = stage_channels(stage)
        self.fuse = ConvBNReLU(2 * c, c, 1)
        self.block = Bottleneck(c)
        self.up = ConvBNReLU(c, stage_channels(stage + 1), 2, stride=2, transposed=True) if stage < 9 else None

    def forward(self, skip: torch.Tensor, below: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = self.fuse(torch.cat([skip, below], dim=1))
        x = x + self.block(x)
        return x, (self.up(x) if self.up is not None else None)


class Encoder(nn.Module):
    """Stages 9..1 plus the two pose heads; returns the bottleneck and every skip."""

    def __init__(self):
        super().__init__()
        self.stages = nn.ModuleDict({f"stage_{s}": EncoderStage(s) for s in STAGES})

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        skips: dict[int, torch.Tensor] = {}
        for s in STAGES:
            x = self.stages[f"stage_{s}"](x)
            skips[s] = x
        return x, skips


def scale_pose(raw: torch.Tensor) -> torch.Tensor:
    """(N, 6, 1, 1) head output -> (N, 6) pose in degrees and crop pixels."""
    scale = raw.new_tensor(POSE_SCALE)
    offset = raw.new_tensor(POSE_OFFSET)
    return raw.flatten(1) * scale + offset


class MNN(nn.Module):
    """The full multi-task network: pose (two heads), landmark heatmaps and visibility.

    ``forward`` returns a dict: ``pose`` and ``pose_proj`` (N, 6) in physical units,
    ``heatmap_logits`` (N, L, 256, 256) before the spatial softmax and ``visibility_logits``
    (N, L), the average-pooled ``fc_vis`` maps. Decoding heatmaps to coordinates is in
    :mod:`mnn_edge.model.decode` so that training can use the logits directly.
    """

    def __init__(self, num_landmarks: int = DEFAULT_NUM_LANDMARKS):
        super().__init__()
        check_num_landmarks(num_landmarks)
        self.num_landmarks = num_landmarks
        self.encoder = Encoder()
        self.fc_pose = nn.Conv2d(256, 6, 1)
        self.fc_pose_proj = nn.Conv2d(256, 6, 1)
        self.decoder = nn.ModuleDict({f"stage_{s}": DecoderStage(s) for s in range(2, 10)})
        self.fc_lnd = nn.Conv2d(64, num_landmarks, 1)
        self.fc_vis = nn.Conv2d(64, num_landmarks, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        code, skips = self.encoder(x)
        below = nn.functional.interpolate(code, scale_factor=2.0, mode="nearest")  # up_1_5
        feat = below
        for s in range(2, 10):
            feat, up = self.decoder[f"stage_{s}"](skips[s], below)
            below = up if up is not None else feat
        return {
            "pose": scale_pose(self.fc_pose(code)),
            "pose_proj": scale_pose(self.fc_pose_proj(code)),
            "heatmap_logits": self.fc_lnd(feat),
            "visibility_logits": self.fc_vis(feat).mean(dim=(2, 3)),  # pool_vis
        }


class PoseModel(nn.Module):
    """Encoder-only head-pose model: MNN's encoder and ``fc_pose``, nothing else.

    Built from a full model with :meth:`from_full`, which shares (not copies) its modules.
    """

    def __init__(self, encoder: Encoder, fc_pose: nn.Conv2d):
        super().__init__()
        self.encoder = encoder
        self.fc_pose = fc_pose

    @classmethod
    def from_full(cls, model: MNN) -> PoseModel:
        return cls(model.encoder, model.fc_pose)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        code, _ = self.encoder(x)
        return {"pose": scale_pose(self.fc_pose(code))}


def init_weights(model: nn.Module, seed: int = 0) -> None:
    """Deterministic start: He-normal convs, residual branches damped, near-zero heads.

    Each bottleneck's last BatchNorm starts at gamma = 0.2 (cf. zero-gamma residual init, Goyal et
    al. 2017) so activations do not double stage after stage; the heads start at std 1e-3 so an
    untrained model predicts poses near the frontal, centred face instead of thousands of degrees.
    """
    gen = torch.Generator().manual_seed(seed)
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            std = 1e-3 if name.startswith("fc_") else math.sqrt(2.0 / (m.weight[0].numel() if isinstance(
                m, nn.Conv2d) else m.weight.shape[0] * math.prod(m.kernel_size)))
            with torch.no_grad():
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * std)
                if m.bias is not None:
                    m.bias.zero_()
        elif isinstance(m, Bottleneck):
            nn.init.constant_(m.expand[1].weight, 0.2)
