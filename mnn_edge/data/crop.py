"""The standard crop: the square box around a face, warped to the network's size x size input.

The box: the landmark bounding box (or the annotated box when there are no landmarks) gives the
centre and the side ``max(width, height)``; the centre moves up by ``UP_SHIFT`` of the box height
(the 68 points stop at the eyebrows, the head does not) and the side grows by ``MARGIN``, so the
crop holds the full head with a little background, as MNN is trained. Synthetic and real faces go
through the same rule, so their crops agree.

Labels follow the pixels: landmarks and the pose's tx, ty through the same affine map, tz (the
weak-perspective scale) multiplied by the zoom. A source with angles but no exact pose (AFLW2000-3D,
300W-LP) gets tx, ty, tz fitted: the mean face posed with the ground-truth angles, scale and shift
least-squares fitted to the 68 landmarks (:func:`mnn_edge.geometry.fit_translation_scale`).

The pixels go through the warp inference uses (:func:`mnn_edge.frame.warp`); what is here is
training's own: the box rule from labels, the labels moved with the crop, augmentation.
"""

from __future__ import annotations

import numpy as np

from mnn_edge.artifact import INPUT_SIZE
from mnn_edge.data import augment as aug_mod
from mnn_edge.data.augment import Augment, AugmentDraw
from mnn_edge.data.readers import load_image_rgb
from mnn_edge.data.sample import CropItem, FaceSample
from mnn_edge.errors import MnnEdgeError
from mnn_edge.frame import warp
from mnn_edge.geometry import (
    apply_affine,
    compose_affine,
    crop_transform,
    euler_to_matrix,
    fit_translation_scale,
    invert_affine,
)
from mnn_edge.meanface import mean_face

MARGIN = 1.7  # crop side / landmark-box side
UP_SHIFT = 0.12  # centre moved up by this fraction of the landmark-box height


def landmark_box(sample: FaceSample) -> np.ndarray:
    """(x0, y0, x1, y1) of the finite landmarks, else the sample's box."""
    if sample.landmarks is not None:
        pts = np.asarray(sample.landmarks, dtype=np.float64)
        pts = pts[np.all(np.isfinite(pts), axis=1)]
        if len(pts):
            return np.concatenate([pts.min(0), pts.max(0)])
    if sample.box is not None:
        return np.asarray(sample.box, dtype=np.float64)
    raise MnnEdgeError(f"{sample.image_path}: no landmarks or box to crop from")


def standard_box(sample: FaceSample) -> tuple[tuple[float, float], float]:
    """(centre, side) of the standard square crop box in image px."""
    x0, y0, x1, y1 = landmark_box(sample)
    side = max(x1 - x0, y1 - y0, 1.0)
    centre = ((x0 + x1) / 2.0, (y0 + y1) / 2.0 - UP_SHIFT * (y1 - y0))
    return centre, MARGIN * side


def image_pose(sample: FaceSample) -> np.ndarray | None:
    """The 6-vector image-space pose: exact when the source has it, else completed from angles."""
    if sample.pose is not None:
        return np.asarray(sample.pose, dtype=np.float64)
    if sample.angles is None:
        return None
    angles = tuple(float(a) for a in sample.angles)
    lms = None if sample.landmarks is None else np.asarray(sample.landmarks, dtype=np.float64)
    if lms is not None and len(lms) == 68:
        ok = np.all(np.isfinite(lms), axis=1)
        return fit_translation_scale(mean_face(), angles, np.where(ok[:, None], lms, 0.0),
                                     weights=ok.astype(np.float64))
    # Box only (Biwi): centre on the box, scale so the posed mean face spans the box. Approximate;
    # only the angles are ground truth for such sources.
    x0, y0, x1, y1 = landmark_box(sample)
    cam = mean_face() @ euler_to_matrix(*angles).T
    extent = max(float(np.ptp(cam[:, 0])), float(np.ptp(cam[:, 1])))
    scale = max(x1 - x0, y1 - y0) / extent
    centre_2d = np.array([scale * cam[:, 0].mean(), -scale * cam[:, 1].mean()])
    tx, ty = np.array([(x0 + x1) / 2.0, (y0 + y1) / 2.0]) - centre_2d
    return np.array([*angles, tx, ty, scale])


def _axis_aligned_pose(pose: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Image-space pose -> crop-space pose under the axis-aligned crop map ``m`` (image -> crop)."""
    out = np.array(pose, dtype=np.float64)
    out[3:5] = apply_affine(m, out[None, 3:5])[0]
    out[5] *= m[0, 0]
    return out


def crop_sample(sample: FaceSample, image: np.ndarray | None = None, size: int = INPUT_SIZE,
                augment: Augment | AugmentDraw | None = None,
                rng: np.random.Generator | None = None) -> CropItem:
    """Crop one face to ``size`` x ``size`` RGB with labels in crop px (see the module docstring).

    Args:
        sample: the face; its image is read from ``sample.image_path`` unless ``image`` is given.
        image: (H, W, 3) uint8 RGB of the sample's image, to avoid reading it again.
        size: side of the output crop.
        augment: random ranges (drawn with ``rng``), or one fixed :class:`AugmentDraw`.
        rng: random generator for ``augment``; a fresh unseeded one when None.
    """
    if image is None:
        image = load_image_rgb(sample.image_path)
    centre, side = standard_box(sample)
    m = crop_transform(centre, side, size)
    lms = None if sample.landmarks is None else apply_affine(m, sample.landmarks)
    vis = None if sample.visibility is None else np.asarray(sample.visibility, dtype=np.float32).copy()
    pose = image_pose(sample)
    if pose is not None:
        pose = _axis_aligned_pose(pose, m)

    d = None
    if isinstance(augment, AugmentDraw):
        d = augment
    elif augment is not None:
        d = aug_mod.draw(augment, rng if rng is not None else np.random.default_rng())
    if d is not None:
        m, lms, vis, pose = _augment_geometry(d, size, m, lms, vis, pose)

    out = warp(image, m, size)
    if d is not None:
        out = aug_mod.colour_jitter(out, d)
    return CropItem(image=out, crop_to_image=invert_affine(m), landmarks=lms, visibility=vis, pose=pose)


def _augment_geometry(d: AugmentDraw, size: int, m: np.ndarray, lms, vis, pose):
    """Compose the mirror and the similarity onto the crop map and move every label with them."""
    if d.flip:
        n = len(lms) if lms is not None else 68
        order = aug_mod.flip_order(n) if (lms is not None or vis is not None) else None
        fm = aug_mod.flip_matrix(size)
        m = compose_affine(fm, m)
        if lms is not None:
            lms = apply_affine(fm, lms)[order]
        if vis is not None:
            vis = vis[order]
        if pose is not None:
            pose = aug_mod.flip_pose(pose, size)
    sm = aug_mod.similarity_matrix(d, size)
    m = compose_affine(sm, m)
    if lms is not None:
        lms = apply_affine(sm, lms)
    if pose is not None:
        pose = aug_mod.similarity_pose(pose, sm)
    return m, lms, vis, pose
