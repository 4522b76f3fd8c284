"""The four MNN losses (spec "Tasks and losses"), each a masked mean over what the labels provide.

- ``L_ED`` (:func:`pose_loss`): euclidean error of the 6 ``fc_pose`` parameters. The parameters
  live in different units (degrees, crop pixels, scale), so each difference is divided by the
  head's own output scale (``POSE_SCALE``: 90 deg for angles, 64 px for tx/ty, 40 for tz) before
  the norm: the units the head regresses in, where 9 degrees, 6.4 px and 4 scale units all weigh 0.1.
- ``L_AE`` (:func:`alignment_loss`): the mean face projected with the ``fc_pose_proj`` pose
  (:func:`project_torch`, the differentiable twin of :func:`mnn_edge.geometry.project`) against the
  ground-truth 2D landmarks: mean point distance over the valid landmarks, divided by the size of
  the ground-truth landmark box (sqrt(w h)), i.e. an NME.
- ``L_CE(h)`` (:func:`heatmap_loss`): cross-entropy between each landmark's spatial softmax over
  the crop and a target distribution, a discretised Gaussian (``sigma`` px) at the ground truth;
  missing landmarks and landmarks outside the crop are masked. The Gaussian is separable, so the
  target is never materialised at 256x256: CE = -sum_yx g_y g_x log p_yx. Its minimum is the
  target's entropy (not 0), reported as is.
- ``L_CE(v)`` (:func:`visibility_loss`): binary cross-entropy of the visibility logits, masked
  where the dataset has no visibility label.

Not in the paper, off by default: ``lnd`` (:func:`decoded_landmark_loss`), the NME of the
landmarks the deployed graph decodes (soft-argmax of the heatmaps, :mod:`mnn_edge.model.decode`)
against the ground truth, normalised like L_AE. L_CE(h) alone moves a heatmap head trained from
scratch slowly on a CPU budget (180 steps left the soft-argmax landmarks worse than the mean
face: the probability floor spread over 256x256 pixels pulls every point to the centre); this
term pushes on exactly that mass, so both together train the decoded output directly.

Also not in the paper, off by default: ``mirror`` (:func:`mirror_loss`), L_ED between the pose of
a crop and the mirrored pose of its mirror image (yaw and roll negated, tx reflected). Flip
augmentation shows the network both views with mirrored labels, yet the round-5 starter still read
a face and its mirror image differently (their disagreement: 1.2 deg of roll on average, about
2.5 deg per face); averaging the two readings cut its frontal roll error from 3.35 to 2.23 deg
(``bench/frontal_flip.py``). This term asks for that agreement directly, on every face, labelled
by the teacher or not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mnn_edge.model.network import POSE_SCALE

LOSS_NAMES = ("ed", "ae", "ce_h", "ce_v", "lnd", "mirror")


@dataclass(frozen=True)
class LossWeights:
    """Weight of each term in the total; 0 switches a term off (and its head may be skipped)."""

    ed: float = 1.0  # L_ED, fc_pose
    ae: float = 1.0  # L_AE, fc_pose_proj
    ce_h: float = 1.0  # L_CE(h), landmark heatmaps
    ce_v: float = 1.0  # L_CE(v), visibility
    lnd: float = 0.0  # NME of the soft-argmax landmarks (not in the paper; module docstring)
    mirror: float = 0.0  # fc_pose of a crop vs that of its mirror image (not in the paper; module docstring)

    def as_dict(self) -> dict[str, float]:
        return {name: float(getattr(self, name)) for name in LOSS_NAMES}

    @property
    def needs_decoder(self) -> bool:
        """The heatmap and visibility heads sit on the decoder; pose heads only need the encoder."""
        return self.ce_h > 0 or self.ce_v > 0 or self.lnd > 0

    @property
    def trains_every_head(self) -> bool:
        """fc_pose (ed), fc_pose_proj (ae), fc_lnd (ce_h or lnd) and fc_vis (ce_v) all get a gradient."""
        return self.ed > 0 and self.ae > 0 and (self.ce_h > 0 or self.lnd > 0) and self.ce_v > 0


def euler_to_matrix_torch(angles_deg: torch.Tensor) -> torch.Tensor:
    """(N, 3) yaw, pitch, roll degrees -> (N, 3, 3); same convention as geometry.euler_to_matrix."""
    a = torch.deg2rad(-angles_deg)
    y, p, r = a[:, 0], a[:, 1], a[:, 2]
    one, zero = torch.ones_like(y), torch.zeros_like(y)
    cx, sx, cy, sy, cz, sz = torch.cos(p), torch.sin(p), torch.cos(y), torch.sin(y), torch.cos(r), torch.sin(r)
    rx = torch.stack([one, zero, zero, zero, cx, -sx, zero, sx, cx], dim=1).view(-1, 3, 3)
    ry = torch.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], dim=1).view(-1, 3, 3)
    rz = torch.stack([cz, -sz, zero, sz, cz, zero, zero, zero, one], dim=1).view(-1, 3, 3)
    return rx @ ry @ rz


def project_torch(points3d: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
    """(P, 3) mean-face points and (N, 6) poses -> (N, P, 2) pixels (geometry.project, batched)."""
    rot = euler_to_matrix_torch(pose[:, :3])
    cam = torch.einsum("pk,njk->npj", points3d.to(pose.dtype), rot)
    scale = pose[:, 5, None]
    u = scale * cam[..., 0] + pose[:, 3, None]
    v = -scale * cam[..., 1] + pose[:, 4, None]
    return torch.stack([u, v], dim=-1)


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``mask``; 0 (still differentiable) when nothing is labelled."""
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


def pose_loss(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """L_ED: (N, 6) prediction and label, (N,) bool -> mean normalised euclidean error."""
    units = pred.new_tensor(POSE_SCALE)
    diff = (pred - target) / units
    dist = torch.sqrt(diff.square().sum(dim=1) + 1e-8)  # eps: finite gradient at a perfect fit
    return _masked_mean(dist, valid)


def mirrored_pose(pose: torch.Tensor, size: int) -> torch.Tensor:
    """(N, 6) pose of a size x size crop -> that of the mirrored crop (augment.flip_pose, batched)."""
    yaw, pitch, roll, tx, ty, tz = pose.unbind(dim=1)
    return torch.stack([-yaw, pitch, -roll, (size - 1.0) - tx, ty, tz], dim=1)


def mirror_loss(pose: torch.Tensor, pose_of_mirror: torch.Tensor, size: int) -> torch.Tensor:
    """L_ED between the (N, 6) poses of crops and the mirrored poses read from their mirror images."""
    valid = torch.ones(pose.shape[0], dtype=torch.bool, device=pose.device)
    return pose_loss(pose, mirrored_pose(pose_of_mirror, size), valid)


def landmark_box_size(landmarks: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """sqrt(w h) of the box around the valid landmarks: (N, L, 2), (N, L) -> (N,), at least 1 px."""
    big = torch.finfo(landmarks.dtype).max
    m = valid[..., None]
    lo = torch.where(m, landmarks, landmarks.new_tensor(big)).amin(dim=1)
    hi = torch.where(m, landmarks, landmarks.new_tensor(-big)).amax(dim=1)
    wh = (hi - lo).clamp_min(1.0)
    return torch.sqrt(wh[:, 0] * wh[:, 1])


def alignment_loss(pose_proj: torch.Tensor, landmarks: torch.Tensor, valid: torch.Tensor,
                   mean_face: torch.Tensor) -> torch.Tensor:
    """L_AE: mean face posed by ``pose_proj`` (N, 6) vs landmarks (N, L, 2) where ``valid`` (N, L)."""
    proj = project_torch(mean_face, pose_proj)
    dist = torch.sqrt((proj - landmarks).square().sum(dim=-1) + 1e-8)
    per_face = (dist * valid).sum(dim=1) / valid.sum(dim=1).clamp_min(1)
    norm = landmark_box_size(landmarks, valid).detach()
    return _masked_mean(per_face / norm, valid.any(dim=1))


def gaussian_1d(centres: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """(...,) centres in pixels -> (..., size) discretised Gaussian, normalised to sum 1."""
    grid = torch.arange(size, device=centres.device, dtype=centres.dtype)
    g = torch.exp(-0.5 * ((grid - centres[..., None]) / sigma).square())
    return g / g.sum(dim=-1, keepdim=True).clamp_min(1e-12)


def heatmap_loss(logits: torch.Tensor, landmarks: torch.Tensor, valid: torch.Tensor,
                 sigma: float = 2.0) -> torch.Tensor:
    """L_CE(h): (N, L, H, W) logits vs Gaussians at (N, L, 2) x, y crop px; masked by ``valid``."""
    n, l_, h, w = logits.shape
    inside = ((landmarks[..., 0] > -0.5) & (landmarks[..., 0] < w - 0.5)
              & (landmarks[..., 1] > -0.5) & (landmarks[..., 1] < h - 0.5))
    mask = valid & inside
    logp = torch.log_softmax(logits.float().reshape(n, l_, h * w), dim=-1).reshape(n, l_, h, w)
    safe = torch.where(mask[..., None], landmarks.float(), landmarks.new_zeros(()).float())
    gx = gaussian_1d(safe[..., 0], w, sigma)
    gy = gaussian_1d(safe[..., 1], h, sigma)
    ce = -torch.einsum("nly,nlx,nlyx->nl", gy, gx, logp)
    return _masked_mean(ce, mask)


def decoded_landmark_loss(logits: torch.Tensor, landmarks: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """NME of the soft-argmax of (N, L, H, W) logits vs (N, L, 2) landmarks where ``valid`` (N, L)."""
    n, l_, h, w = logits.shape
    prob = torch.softmax(logits.float().reshape(n, l_, h, w).flatten(2), dim=-1).reshape(n, l_, h, w)
    xs = torch.arange(w, device=logits.device, dtype=prob.dtype)
    ys = torch.arange(h, device=logits.device, dtype=prob.dtype)
    pred = torch.stack([(prob.sum(dim=2) * xs).sum(dim=-1), (prob.sum(dim=3) * ys).sum(dim=-1)], dim=-1)
    dist = torch.sqrt((pred - landmarks.float()).square().sum(dim=-1) + 1e-8)
    per_face = (dist * valid).sum(dim=1) / valid.sum(dim=1).clamp_min(1)
    norm = landmark_box_size(landmarks.float(), valid).detach()
    return _masked_mean(per_face / norm, valid.any(dim=1))


def visibility_loss(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """L_CE(v): (N, L) logits vs 0/1 labels where ``valid`` (N, L)."""
    bce = F.binary_cross_entropy_with_logits(logits.float(), target.float(), reduction="none")
    return _masked_mean(bce, valid)


def gaussian_entropy(sigma: float) -> float:
    """Entropy (nats) of a 2D discretised Gaussian far from the border: the floor of L_CE(h)."""
    return 2 * 0.5 * math.log(2 * math.pi * math.e * sigma * sigma)


def mnn_losses(out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], weights: LossWeights,
               mean_face: torch.Tensor, sigma: float = 2.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Weighted total and the individual terms (detached) of the terms with a non-zero weight.

    ``out`` is the network's dict (``pose``, ``pose_proj`` and, when the decoder ran,
    ``heatmap_logits``, ``visibility_logits``; ``pose_mirror``, the pose read from the mirrored
    image, when the ``mirror`` term is on); ``batch`` holds the labels made by
    :mod:`mnn_edge.train.dataset` (``pose``, ``pose_valid``, ``landmarks``, ``lnd_valid``,
    ``visibility``, ``vis_valid``).
    """
    terms: dict[str, torch.Tensor] = {}
    if weights.ed > 0:
        terms["ed"] = pose_loss(out["pose"].float(), batch["pose"], batch["pose_valid"])
    if weights.ae > 0:
        terms["ae"] = alignment_loss(out["pose_proj"].float(), batch["landmarks"], batch["lnd_valid"], mean_face)
    if weights.ce_h > 0:
        terms["ce_h"] = heatmap_loss(out["heatmap_logits"], batch["landmarks"], batch["lnd_valid"], sigma)
    if weights.lnd > 0:
        terms["lnd"] = decoded_landmark_loss(out["heatmap_logits"], batch["landmarks"], batch["lnd_valid"])
    if weights.ce_v > 0:
        terms["ce_v"] = visibility_loss(out["visibility_logits"], batch["visibility"], batch["vis_valid"])
    if weights.mirror > 0:
        terms["mirror"] = mirror_loss(out["pose"].float(), out["pose_mirror"].float(), batch["image"].shape[-1])
    if not terms:
        raise ValueError("every loss weight is 0: nothing to train")
    w = weights.as_dict()
    total = sum(w[k] * v for k, v in terms.items())
    return total, {k: v.detach() for k, v in terms.items()}
