"""Synthetic faces: exact labels, determinism, plausible visibility, the on-disk layout and the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from mnn_edge.data.cli import main as data_main
from mnn_edge.data.synth import (
    PITCH_RANGE,
    ROLL_RANGE,
    YAW_RANGE,
    render_face,
    sample_pose,
    write_synthetic,
)
from mnn_edge.errors import MnnEdgeError
from mnn_edge.geometry import project
from mnn_edge.meanface import mean_face

SIZE = 128


def _rng(i: int = 0) -> np.random.Generator:
    return np.random.default_rng([7, i])


@pytest.mark.parametrize("i", range(4))
def test_mean_face_projects_onto_labels_without_deformation(i):
    img, lab = render_face(_rng(i), SIZE, deform=False)
    assert img.shape == (SIZE, SIZE, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(lab.shape_3d, mean_face())
    assert np.abs(project(mean_face(), lab.pose) - lab.landmarks).max() < 0.5


@pytest.mark.parametrize("i", range(4))
def test_deformed_shape_projects_onto_labels(i):
    _, lab = render_face(_rng(i), SIZE)
    assert np.abs(project(lab.shape_3d, lab.pose) - lab.landmarks).max() < 0.5
    # The deformation is real but modest: the face is still a face.
    delta = np.abs(lab.shape_3d - mean_face()).max()
    assert 0.005 < delta < 0.5
    inside = (lab.landmarks >= 0) & (lab.landmarks <= SIZE - 1)
    assert inside.all()
    sample = lab.to_sample("x.jpg")
    np.testing.assert_array_equal(sample.landmarks, lab.landmarks)
    np.testing.assert_array_equal(sample.angles, lab.pose[:3])
    assert sample.source == "synthetic"


def test_same_seed_same_face_different_seed_different_face():
    a_img, a = render_face(_rng(3), SIZE)
    b_img, b = render_face(_rng(3), SIZE)
    c_img, c = render_face(_rng(4), SIZE)
    np.testing.assert_array_equal(a_img, b_img)
    np.testing.assert_array_equal(a.landmarks, b.landmarks)
    np.testing.assert_array_equal(a.visibility, b.visibility)
    assert not np.array_equal(a.pose, c.pose)
    assert not np.array_equal(a_img, c_img)


def test_sampled_angles_stay_in_range():
    poses = np.array([sample_pose(_rng(i), mean_face(), 256) for i in range(400)])
    for k, (lo, hi) in enumerate((YAW_RANGE, PITCH_RANGE, ROLL_RANGE)):
        assert poses[:, k].min() >= lo and poses[:, k].max() <= hi
        # The whole range is used, not just a narrow band near zero.
        assert poses[:, k].min() < lo + 0.2 * (hi - lo) and poses[:, k].max() > hi - 0.2 * (hi - lo)
    assert (poses[:, 5] > 0).all()


def _posed(yaw: float, pitch: float = 0.0, roll: float = 0.0) -> np.ndarray:
    return np.array([yaw, pitch, roll, SIZE / 2, SIZE / 2 + 4, 0.3 * SIZE])


def test_frontal_face_is_mostly_visible():
    _, lab = render_face(_rng(0), SIZE, deform=False, pose=_posed(0), occlude=False)
    assert lab.visibility.mean() > 0.9


@pytest.mark.parametrize("i", range(6))
def test_deformed_frontal_faces_show_their_jaw_line(i):
    # Cheeks or a stretched skull must never bulge over the jaw contour seen from the front.
    _, lab = render_face(_rng(100 + i), SIZE, pose=_posed(0), occlude=False)
    assert lab.visibility[:17].sum() >= 16


@pytest.mark.parametrize("yaw", [80.0, -80.0])
def test_turned_face_hides_its_far_jaw(yaw):
    _, lab = render_face(_rng(1), SIZE, deform=False, pose=_posed(yaw), occlude=False)
    # Positive yaw turns the face's x>0 half (landmarks 9..16, image right) toward the camera.
    near, far = (slice(10, 17), slice(0, 7)) if yaw > 0 else (slice(0, 7), slice(10, 17))
    assert lab.visibility[far].sum() == 0
    assert lab.visibility[near].mean() > 0.8


def test_write_synthetic_layout_matches_labels(tmp_path):
    paths = write_synthetic(tmp_path / "out", 3, seed=5, image_size=SIZE, progress=False)
    assert [p.name for p in paths] == ["synth_000000.jpg", "synth_000001.jpg", "synth_000002.jpg"]
    for i, p in enumerate(paths):
        _, lab = render_face(np.random.default_rng([5, i]), SIZE)
        m = scipy.io.loadmat(p.with_suffix(".mat"))
        assert m["pt3d_68"].shape == (3, 68) and m["Pose_Para"].shape == (1, 7)
        np.testing.assert_allclose(m["pt3d_68"][:2].T, lab.landmarks)
        np.testing.assert_allclose(m["pose_mnn"][0], lab.pose)
        np.testing.assert_allclose(m["visibility"][0], lab.visibility)
        np.testing.assert_allclose(m["shape_3d"], lab.shape_3d)
        yaw, pitch, roll, tx, ty, s = lab.pose
        np.testing.assert_allclose(m["Pose_Para"][0], [np.deg2rad(pitch), np.deg2rad(yaw), np.deg2rad(roll),
                                                       tx, ty, 0.0, s])
        # Re-projecting the stored shape with the stored pose gives the stored landmarks.
        assert np.abs(project(m["shape_3d"], m["pose_mnn"][0]) - m["pt3d_68"][:2].T).max() < 0.5
    assert not list((tmp_path / "out").glob(".*part"))


def test_workers_do_not_change_the_files(tmp_path):
    one = write_synthetic(tmp_path / "a", 4, seed=2, image_size=64, workers=1, progress=False)
    two = write_synthetic(tmp_path / "b", 4, seed=2, image_size=64, workers=2, progress=False)
    for p, q in zip(one, two):
        assert p.read_bytes() == q.read_bytes()
        assert p.with_suffix(".mat").read_bytes() == q.with_suffix(".mat").read_bytes()


def test_readers_read_what_synth_writes(synthetic_dir):
    from mnn_edge.data.readers import read_dataset

    samples = read_dataset(synthetic_dir, "synthetic")
    assert len(samples) == 16
    s = samples[3]
    m = scipy.io.loadmat(synthetic_dir / "synth_000003.mat")
    np.testing.assert_allclose(s.landmarks, m["pt3d_68"][:2].T)
    np.testing.assert_allclose(s.pose, m["pose_mnn"][0])


def test_cli_writes_n_pairs_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "cli"
    assert data_main(["synth", "--out", str(out), "--n", "3", "--seed", "1", "--size", "64", "--no-progress"]) == 0
    assert len(list(out.glob("synth_*.jpg"))) == 3 and len(list(out.glob("synth_*.mat"))) == 3
    assert "wrote 3 faces" in capsys.readouterr().out
    with pytest.raises(MnnEdgeError, match="--force"):
        data_main(["synth", "--out", str(out), "--n", "3", "--size", "64", "--no-progress"])
    assert data_main(["synth", "--out", str(out), "--n", "2", "--size", "64", "--no-progress", "--force"]) == 0


@pytest.mark.parametrize("kwargs, message", [
    ({"n": 0}, "positive"),
    ({"n": -3}, "positive"),
    ({"n": 2, "image_size": 16}, "must be 64..2048 px"),
    ({"n": 2, "workers": 0}, "workers"),
])
def test_bad_arguments_raise_clear_errors(tmp_path, kwargs, message):
    with pytest.raises(MnnEdgeError, match=message):
        write_synthetic(tmp_path / "x", seed=0, progress=False, **kwargs)


def test_unwritable_output_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(MnnEdgeError, match="cannot create output folder"):
        write_synthetic(blocker / "sub", 2, seed=0, progress=False)


def test_cli_error_exit_code(tmp_path, capsys):
    from mnn_edge.cli_util import run_cli

    assert run_cli(data_main, ["synth", "--out", str(tmp_path / "o"), "--n", "0"]) == 1
    assert "error: number of faces must be positive" in capsys.readouterr().err


def test_rasterizer_covers_pixel_centres_and_keeps_the_nearest():
    from mnn_edge.data.raster import rasterize

    # Two overlapping squares (two triangles each); the second is nearer on its right half only.
    xy = np.array([[1.5, 1.5], [6.5, 1.5], [6.5, 6.5], [1.5, 6.5], [3.5, 0.5], [8.5, 0.5], [8.5, 5.5], [3.5, 5.5]])
    depth = np.array([1.0, 1.0, 1.0, 1.0, 0.0, 2.0, 2.0, 0.0])
    tris = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]])
    r = rasterize(xy, depth, tris, 10, 10)
    first = np.isin(r.tri, [0, 1])
    second = np.isin(r.tri, [2, 3])
    # Pixel centres 2..6 lie inside the first square, 4..8 x 1..5 inside the second.
    expect_any = np.zeros((10, 10), bool)
    expect_any[2:7, 2:7] = True
    expect_any[1:6, 4:9] = True
    np.testing.assert_array_equal(r.mask, expect_any)
    # Where both cover a pixel, the second wins iff its depth (0 at x=3.5 .. 2 at x=8.5) exceeds 1.
    assert second[3, 7] and second[3, 8] and first[3, 4] and first[3, 5]
    np.testing.assert_allclose(r.depth[3, 7], (7 - 3.5) / 5 * 2, atol=1e-5)
    np.testing.assert_allclose(r.bary.sum(axis=2)[r.mask], 1.0, atol=1e-6)
    # Back-face culling: in image coordinates (y down) camera-facing triangles have negative area.
    # The first square's triangles are wound positive (facing away); reverse the second's.
    flipped = tris.copy()
    flipped[2:] = flipped[2:, ::-1]
    culled = rasterize(xy, depth, flipped, 10, 10, cullable=np.ones(4, bool))
    assert set(np.unique(culled.tri)) == {-1, 2, 3}
    only_second = np.zeros((10, 10), bool)
    only_second[1:6, 4:9] = True
    np.testing.assert_array_equal(culled.mask, only_second)


def test_preview_sheet_is_the_written_faces(tmp_path):
    import cv2

    from mnn_edge.data.synth.preview import contact_sheet

    sheet = contact_sheet(n=3, seed=4, image_size=64, cols=2)
    assert sheet.shape == (128, 128, 3)
    img, _ = render_face(np.random.default_rng([4, 2]), 64)
    np.testing.assert_array_equal(sheet[64:, :64], img)
    assert not sheet[64:, 64:].any()  # the unused fourth tile stays black
    out = tmp_path / "sheet.png"
    assert data_main(["preview", "--out", str(out), "--n", "2", "--size", "64", "--landmarks"]) == 0
    assert cv2.imread(str(out)).shape == (64, 256, 3)
