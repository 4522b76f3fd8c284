"""The four MNN losses: values at known points, masking, and the torch projection vs numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mnn_edge.data.augment import flip_pose
from mnn_edge.geometry import project
from mnn_edge.meanface import mean_face
from mnn_edge.model.network import POSE_SCALE
from mnn_edge.train.losses import (
    LossWeights,
    alignment_loss,
    decoded_landmark_loss,
    gaussian_entropy,
    heatmap_loss,
    mirror_loss,
    mirrored_pose,
    mnn_losses,
    pose_loss,
    project_torch,
    visibility_loss,
)

MF = torch.tensor(np.array(mean_face()), dtype=torch.float64)


def random_poses(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.c_[rng.uniform(-90, 90, n), rng.uniform(-60, 60, (n, 2)), rng.uniform(40, 220, (n, 2)),
                 rng.uniform(40, 160, n)]


def test_project_torch_matches_numpy_geometry():
    poses = random_poses(16)
    got = project_torch(MF, torch.tensor(poses)).numpy()
    want = np.stack([project(mean_face(), p) for p in poses])
    np.testing.assert_allclose(got, want, atol=1e-9)


def test_project_torch_is_differentiable_in_every_pose_parameter():
    pose = torch.tensor(random_poses(2, seed=1), requires_grad=True)
    project_torch(MF, pose).sum().backward()
    assert torch.all(pose.grad.abs().sum(0) > 0)


def test_pose_loss_normalises_units_and_masks():
    target = torch.zeros(3, 6)
    pred = torch.zeros(3, 6)
    pred[0, 0] = 9.0  # 9 degrees of yaw
    pred[1, 3] = 6.4  # 6.4 px of tx
    pred[2, 5] = 1000.0  # masked out below
    valid = torch.tensor([True, True, False])
    assert POSE_SCALE[0] == 90.0 and POSE_SCALE[3] == 64.0
    assert pose_loss(pred, target, valid).item() == pytest.approx(0.1, abs=1e-4)
    assert pose_loss(pred, target, torch.zeros(3, dtype=torch.bool)).item() == 0.0


def test_alignment_loss_is_zero_at_the_truth_and_an_nme_otherwise():
    poses = torch.tensor(random_poses(4, seed=2), dtype=torch.float32)
    lms = project_torch(MF.float(), poses)
    valid = torch.ones(4, 68, dtype=torch.bool)
    assert alignment_loss(poses, lms, valid, MF.float()).item() < 1e-3
    shifted = poses.clone()
    shifted[:, 3] += 5.0  # every point 5 px off
    box = torch.sqrt((lms.amax(1) - lms.amin(1)).prod(dim=1))
    want = (5.0 / box).mean().item()
    assert alignment_loss(shifted, lms, valid, MF.float()).item() == pytest.approx(want, rel=1e-3)
    # Missing landmarks do not count: garbage in masked slots changes nothing.
    valid[:, :10] = False
    noisy = lms.clone()
    noisy[:, :10] = 1e4
    assert alignment_loss(poses, noisy, valid, MF.float()).item() < 1e-3


def test_heatmap_loss_bounds_and_masking():
    lms = torch.tensor([[[100.0, 50.0], [20.0, 200.0], [-40.0, 10.0]]])  # third is outside the crop
    valid = torch.tensor([[True, True, True]])
    uniform = torch.zeros(1, 3, 256, 256)
    assert heatmap_loss(uniform, lms, valid).item() == pytest.approx(math.log(256 * 256), rel=1e-5)
    # Logits equal to the log of the target: the minimum, the target's entropy.
    ys, xs = torch.meshgrid(torch.arange(256.0), torch.arange(256.0), indexing="ij")
    peak = torch.stack([-((xs - x) ** 2 + (ys - y) ** 2) / (2 * 2.0 ** 2) for x, y in lms[0]])[None]
    assert heatmap_loss(peak, lms, valid).item() == pytest.approx(gaussian_entropy(2.0), abs=1e-3)
    # A map peaked elsewhere costs more; the outside landmark is ignored whatever its map says.
    wrong = peak.roll(shifts=30, dims=3)
    wrong[0, 2] = peak[0, 2]
    assert heatmap_loss(wrong, lms, valid).item() > gaussian_entropy(2.0) + 10
    assert heatmap_loss(peak, lms, torch.tensor([[True, True, False]])).item() == pytest.approx(
        heatmap_loss(peak, lms, valid).item(), abs=1e-6)


def test_decoded_landmark_loss_is_the_nme_of_the_soft_argmax():
    lms = torch.tensor([[[100.0, 50.0], [20.0, 200.0], [150.0, 150.0]]])
    valid = torch.tensor([[True, True, True]])
    ys, xs = torch.meshgrid(torch.arange(256.0), torch.arange(256.0), indexing="ij")
    sharp = torch.stack([-((xs - x) ** 2 + (ys - y) ** 2) / (2 * 0.5 ** 2) for x, y in lms[0]])[None]
    assert decoded_landmark_loss(sharp, lms, valid).item() < 1e-3
    # A uniform map decodes every point to the crop centre (127.5, 127.5): the mean distance over the box.
    centre = torch.tensor([127.5, 127.5])
    box = math.sqrt((150 - 20) * (200 - 50))
    want = float(torch.linalg.norm(lms[0] - centre, dim=1).mean()) / box
    uniform = torch.zeros(1, 3, 256, 256, requires_grad=True)
    loss = decoded_landmark_loss(uniform, lms, valid)
    assert loss.item() == pytest.approx(want, rel=1e-4)
    loss.backward()  # and it pushes probability toward the truth: the gradient is negative there
    assert uniform.grad[0, 0, 50, 100] < 0 < uniform.grad[0, 0, 255, 255]
    # masked points do not count
    far = sharp.clone()
    far[0, 2] = sharp[0, 0]
    assert decoded_landmark_loss(far, lms, torch.tensor([[True, True, False]])).item() < 1e-3


def test_visibility_loss_is_bce_on_labelled_points():
    logits = torch.tensor([[2.0, -2.0, 5.0]])
    target = torch.tensor([[1.0, 1.0, 0.0]])
    valid = torch.tensor([[True, True, False]])
    want = (math.log1p(math.exp(-2.0)) + math.log1p(math.exp(2.0))) / 2
    assert visibility_loss(logits, target, valid).item() == pytest.approx(want, rel=1e-6)


def test_mnn_losses_only_computes_weighted_terms():
    n = 2
    out = {"pose": torch.zeros(n, 6), "pose_proj": torch.tensor(random_poses(n), dtype=torch.float32)}
    batch = {"pose": torch.ones(n, 6), "pose_valid": torch.ones(n, dtype=torch.bool),
             "landmarks": torch.full((n, 68, 2), 128.0), "lnd_valid": torch.ones(n, 68, dtype=torch.bool),
             "visibility": torch.ones(n, 68), "vis_valid": torch.ones(n, 68, dtype=torch.bool)}
    total, terms = mnn_losses(out, batch, LossWeights(ed=2.0, ae=0.5, ce_h=0.0, ce_v=0.0), MF.float())
    assert set(terms) == {"ed", "ae"}
    assert LossWeights(0, 0, 0, 0, lnd=1.0).needs_decoder
    assert LossWeights().trains_every_head and LossWeights(ce_h=0, lnd=1.0).trains_every_head
    assert not LossWeights(ce_v=0).trains_every_head
    assert total.item() == pytest.approx(2.0 * terms["ed"].item() + 0.5 * terms["ae"].item(), rel=1e-6)
    with pytest.raises(ValueError, match="every loss weight is 0"):
        mnn_losses(out, batch, LossWeights(0, 0, 0, 0), MF.float())


def test_mirror_loss_is_zero_for_consistent_readings_and_l_ed_otherwise():
    pose = torch.tensor([[20.0, -5.0, 8.0, 100.0, 120.0, 40.0], [-35.0, 10.0, -3.0, 130.0, 125.0, 38.0]])
    size = 256
    want = torch.tensor(np.stack([flip_pose(p.numpy(), size) for p in pose]), dtype=torch.float32)
    assert torch.allclose(mirrored_pose(pose, size), want)
    assert mirror_loss(pose, mirrored_pose(pose, size), size).item() == pytest.approx(0.0, abs=1e-3)
    # A network that reads both views with the same +9 deg of roll disagrees by 18 deg: 18 / 90.
    biased = pose.clone()
    biased[:, 2] += 9.0
    mirror_biased = mirrored_pose(pose, size)
    mirror_biased[:, 2] += 9.0
    assert mirror_loss(biased, mirror_biased, size).item() == pytest.approx(18.0 / POSE_SCALE[2], rel=1e-4)


def test_mnn_losses_mirror_term_needs_the_mirrored_pose():
    n = 2
    pose = torch.tensor(random_poses(n), dtype=torch.float32)
    out = {"pose": pose, "pose_mirror": mirrored_pose(pose, 256) + torch.tensor([0, 0, 4.5, 0, 0, 0])}
    batch = {"image": torch.zeros(n, 3, 256, 256), "pose": pose, "pose_valid": torch.ones(n, dtype=torch.bool)}
    total, terms = mnn_losses(out, batch, LossWeights(ed=0, ae=0, ce_h=0, ce_v=0, mirror=2.0), MF.float())
    assert set(terms) == {"mirror"}
    assert terms["mirror"].item() == pytest.approx(4.5 / POSE_SCALE[2], rel=1e-4)
    assert total.item() == pytest.approx(2 * 4.5 / POSE_SCALE[2], rel=1e-4)
    assert not LossWeights(0, 0, 0, 0, mirror=1.0).needs_decoder
