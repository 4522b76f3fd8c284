"""Dataset readers: fixture files in the real formats written here, and the real shared samples."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io as sio

from mnn_edge.data.readers import aflw2000_protocol, load_image_rgb, read_dataset
from mnn_edge.data.sample import FaceSample
from mnn_edge.errors import MnnEdgeError
from mnn_edge.geometry import fit_translation_scale, project
from mnn_edge.meanface import mean_face


def write_face(folder: Path, name: str, pose, size: int = 200, synthetic: bool = True, **overrides) -> np.ndarray:
    """One NAME.jpg + NAME.mat in the shared layout; returns the 0-based landmarks written."""
    folder.mkdir(parents=True, exist_ok=True)
    pose = np.asarray(pose, dtype=np.float64)
    lms = project(mean_face(), pose)
    img = np.full((size, size, 3), 90, np.uint8)
    for x, y in lms:
        cv2.circle(img, (int(round(x)), int(round(y))), 1, (255, 255, 255), -1)
    cv2.imwrite(str(folder / f"{name}.jpg"), img)
    yaw, pitch, roll = np.deg2rad(pose[:3])
    offset = 0.0 if synthetic else 1.0  # AFLW2000-3D is 1-based (MATLAB)
    pt3d = np.vstack([lms.T + offset, np.zeros((1, 68))]).astype(np.float32)
    mat = {"Pose_Para": np.array([[pitch, yaw, roll, 0, 0, 0, 1e-3]], np.float32), "pt3d_68": pt3d}
    if synthetic:
        mat["visibility"] = (np.arange(68) % 3 != 0).astype(np.float64)[None]
        mat["pose_mnn"] = pose[None]
    mat.update(overrides)
    for key in [k for k, v in mat.items() if v is None]:
        del mat[key]
    sio.savemat(folder / f"{name}.mat", mat)
    return lms


POSES = [(10.0, -5.0, 3.0, 100.0, 105.0, 60.0), (-40.0, 15.0, -10.0, 95.0, 100.0, 55.0),
         (70.0, -20.0, 20.0, 105.0, 98.0, 50.0)]


def test_synthetic_reader_fills_pose_visibility_and_zero_based_landmarks(tmp_path):
    written = [write_face(tmp_path, f"synth_{i:06d}", p) for i, p in enumerate(POSES)]
    samples = read_dataset(tmp_path, "synthetic")
    assert [s.image_path.name for s in samples] == ["synth_000000.jpg", "synth_000001.jpg", "synth_000002.jpg"]
    for s, lms, pose in zip(samples, written, POSES):
        assert s.source == "synthetic"
        np.testing.assert_allclose(s.pose, pose)
        np.testing.assert_allclose(s.angles, pose[:3])
        np.testing.assert_allclose(s.landmarks, lms, atol=1e-4)  # float32 on disk
        assert s.visibility.shape == (68,) and s.visibility.sum() == 45


def test_aflw2000_reader_converts_pose_para_order_radians_and_one_based_pixels(tmp_path):
    lms = write_face(tmp_path, "image00001", POSES[1], synthetic=False)
    (s,) = read_dataset(tmp_path, "aflw2000")
    np.testing.assert_allclose(s.angles, POSES[1][:3], atol=1e-4)  # (yaw, pitch, roll) degrees
    np.testing.assert_allclose(s.landmarks, lms, atol=1e-3)  # 1-based on disk -> 0-based
    assert s.pose is None and s.visibility is None and s.source == "aflw2000"


def test_300wlp_reads_separate_landmark_file_when_pt3d_68_is_absent(tmp_path):
    lms = write_face(tmp_path / "AFW", "AFW_1_0", POSES[0], synthetic=False, pt3d_68=None,
                     pt2d=np.zeros((2, 68)))
    (tmp_path / "landmarks" / "AFW").mkdir(parents=True)
    sio.savemat(tmp_path / "landmarks" / "AFW" / "AFW_1_0_pts.mat", {"pts_3d": lms + 1.0, "pts_2d": lms * 0})
    (s,) = read_dataset(tmp_path, "300wlp")
    np.testing.assert_allclose(s.landmarks, lms, atol=1e-6)
    # Without the landmarks/ tree the 68-point pt2d of the main file is the fallback.
    write_face(tmp_path / "HELEN", "HELEN_2_0", POSES[0], synthetic=False, pt3d_68=None, pt2d=lms.T + 1.0)
    (tmp_path / "Code" / "ModelGeneration").mkdir(parents=True)  # 300W-LP ships its 3DMM here
    sio.savemat(tmp_path / "Code" / "ModelGeneration" / "model_info.mat", {"x": np.zeros(3)})
    samples = read_dataset(tmp_path, "300wlp")  # no warning: Code/ and landmarks/ are not faces
    assert len(samples) == 2
    np.testing.assert_allclose(samples[1].landmarks, lms, atol=1e-6)


def test_bad_files_are_skipped_with_one_counted_warning(tmp_path):
    for i, p in enumerate(POSES):
        write_face(tmp_path, f"good_{i}", p)
    write_face(tmp_path, "bad_image", POSES[0])
    (tmp_path / "bad_image.jpg").write_bytes(b"not a jpeg at all")
    write_face(tmp_path, "bad_nokey", POSES[0], pose_mnn=None)
    nan_pose = np.array(POSES[0])
    nan_pose[2] = np.nan
    write_face(tmp_path, "bad_nan", POSES[0], pose_mnn=nan_pose[None])
    write_face(tmp_path, "bad_outside", (0, 0, 0, 600, 100, 50))
    (tmp_path / "bad_corrupt.mat").write_bytes(b"MATLAB garbage")
    cv2.imwrite(str(tmp_path / "bad_corrupt.jpg"), np.zeros((8, 8, 3), np.uint8))
    write_face(tmp_path, "bad_noimage", POSES[0])
    (tmp_path / "bad_noimage.jpg").unlink()
    with pytest.warns(UserWarning) as rec:
        samples = read_dataset(tmp_path, "synthetic")
    assert len(samples) == 3
    messages = [str(w.message) for w in rec]
    assert len(messages) == 1
    msg = messages[0]
    assert "skipped 6 of 9 files:" in msg
    for part in ("1 unreadable image", "1 missing pose_mnn", "1 NaN in pose_mnn", "1 landmarks outside the image",
                 "1 unreadable annotation", "1 missing image"):
        assert part in msg


def test_nothing_usable_and_missing_folder_raise_clear_errors(tmp_path):
    with pytest.raises(MnnEdgeError, match="does not exist"):
        read_dataset(tmp_path / "nope", "aflw2000")
    with pytest.raises(MnnEdgeError, match="no aflw2000 annotation files"):
        read_dataset(tmp_path, "aflw2000")
    write_face(tmp_path, "a", POSES[0], synthetic=False, Pose_Para=None)
    with pytest.warns(UserWarning), pytest.raises(MnnEdgeError, match="1 missing Pose_Para"):
        read_dataset(tmp_path, "aflw2000")
    with pytest.raises(MnnEdgeError, match="unknown dataset format"):
        read_dataset(tmp_path, "kitti")


def test_limit_stops_after_that_many_usable_faces(tmp_path):
    for i, p in enumerate(POSES):
        write_face(tmp_path, f"s{i}", p)
    assert len(read_dataset(tmp_path, "synthetic", limit=2)) == 2
    with pytest.raises(MnnEdgeError, match="limit"):
        read_dataset(tmp_path, "synthetic", limit=0)


def test_aflw2000_protocol_drops_faces_beyond_99_degrees():
    faces = [FaceSample(Path(f"{i}.jpg"), angles=np.array(a, float))
             for i, a in enumerate([(98.9, 0, 0), (0, -99.5, 0), (0, 0, 120), (-30, 20, 10)])]
    faces.append(FaceSample(Path("noangles.jpg")))
    kept = aflw2000_protocol(faces)
    assert [f.image_path.name for f in kept] == ["0.jpg", "3.jpg", "noangles.jpg"]


def test_load_image_rgb_handles_colour_order_gray_and_alpha(tmp_path):
    bgr = np.zeros((4, 5, 3), np.uint8)
    bgr[..., 2] = 200  # red in OpenCV's BGR
    cv2.imwrite(str(tmp_path / "red.png"), bgr)
    rgb = load_image_rgb(tmp_path / "red.png")
    assert rgb.shape == (4, 5, 3) and rgb.dtype == np.uint8 and rgb[0, 0].tolist() == [200, 0, 0]
    cv2.imwrite(str(tmp_path / "gray.png"), np.full((3, 3), 77, np.uint8))
    assert load_image_rgb(tmp_path / "gray.png").tolist() == [[[77] * 3] * 3] * 3
    bgra = np.dstack([bgr, np.full((4, 5), 10, np.uint8)])
    cv2.imwrite(str(tmp_path / "alpha.png"), bgra)
    assert load_image_rgb(tmp_path / "alpha.png")[0, 0].tolist() == [200, 0, 0]
    cv2.imwrite(str(tmp_path / "deep.png"), np.full((2, 2), 65535, np.uint16))
    assert load_image_rgb(tmp_path / "deep.png").max() == 255
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 nope")
    with pytest.raises(MnnEdgeError, match="cannot read image"):
        load_image_rgb(tmp_path / "broken.jpg")


# ---- the real AFLW2000-3D samples -------------------------------------------------------------

def _aflw(shared_data) -> list[FaceSample]:
    folder = shared_data / "samples" / "aflw2000"
    if not any(folder.glob("*.mat")):
        pytest.skip("no AFLW2000-3D samples")
    return read_dataset(folder, "aflw2000")


def _fit_error(angles, lms) -> float:
    pose = fit_translation_scale(mean_face(), angles, lms)
    return float(np.linalg.norm(project(mean_face(), pose) - lms, axis=1).mean() / np.ptp(lms, 0).max())


def test_real_aflw2000_samples_match_the_pose_convention(shared_data):
    """The mean face posed with the read angles lands on the read landmarks (measured 0.031-0.052
    of the box side on the four samples); the yaw sign flipped is worse wherever yaw is clear."""
    samples = _aflw(shared_data)
    assert len(samples) == 4
    for s in samples:
        mat = sio.loadmat(s.image_path.with_suffix(".mat"))
        np.testing.assert_allclose(s.angles, np.rad2deg(mat["Pose_Para"][0, [1, 0, 2]]), rtol=1e-6)
        np.testing.assert_allclose(s.landmarks, mat["pt3d_68"][:2].T - 1.0)
        right = _fit_error(tuple(s.angles), s.landmarks)
        assert right < 0.06
        if abs(s.angles[0]) > 10:
            flipped = (-s.angles[0], s.angles[1], s.angles[2])
            assert _fit_error(flipped, s.landmarks) > right + 0.02
    assert len(aflw2000_protocol(samples)) == 4  # all four are within +-99 degrees


def test_real_300w_pts_samples(shared_data):
    folder = shared_data / "samples" / "300w_pts"
    if not any(folder.glob("*.pts")):
        pytest.skip("no 300W samples")
    samples = read_dataset(folder, "300w")
    assert [s.image_path.name for s in samples] == ["breakingbad.jpg", "einstein.jpg", "takeo.ppm"]
    first = np.loadtxt(folder / "einstein.pts", skiprows=3, max_rows=68)
    np.testing.assert_allclose(samples[1].landmarks, first - 1.0)
    assert all(s.landmarks.shape == (68, 2) and s.angles is None for s in samples)


# ---- landmark-only formats ----------------------------------------------------------------------

def write_pts(path: Path, pts: np.ndarray) -> None:
    body = "\n".join(" ".join(f"{v:.3f}" for v in row) for row in pts)
    path.write_text(f"version: 1\nn_points:  {len(pts)}\n{{\n{body}\n}}\n")


def test_300w_and_cofw_pts_are_one_based_and_checked(tmp_path):
    lms = project(mean_face(), np.array([0, 0, 0, 100, 100, 50.0]))
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((200, 200, 3), np.uint8))
    write_pts(tmp_path / "a.pts", lms + 1.0)
    cv2.imwrite(str(tmp_path / "b.jpg"), np.zeros((200, 200, 3), np.uint8))
    write_pts(tmp_path / "b.pts", lms[:29] + 1.0)  # a COFW file in a 300W folder
    with pytest.warns(UserWarning, match="1 not 68 points"):
        (s,) = read_dataset(tmp_path, "300w")
    np.testing.assert_allclose(s.landmarks, lms, atol=1e-3)
    cofw = tmp_path / "cofw"
    cofw.mkdir()
    cv2.imwrite(str(cofw / "c.jpg"), np.zeros((200, 200, 3), np.uint8))
    occluded = (np.arange(29) % 4 == 0).astype(float)
    write_pts(cofw / "c.pts", np.column_stack([lms[:29] + 1.0, occluded]))
    (c,) = read_dataset(cofw, "cofw")
    assert c.landmarks.shape == (29, 2) and c.source == "cofw"
    np.testing.assert_array_equal(c.visibility, 1.0 - occluded)
    (cofw / "c.pts").write_text("version: 1\nn_points: 29\n{\n1 2\n}\n")
    with pytest.warns(UserWarning), pytest.raises(MnnEdgeError, match="1 bad n_points"):
        read_dataset(cofw, "cofw")


def test_wflw_list_lines_with_box_attributes_and_relative_image(tmp_path):
    images = tmp_path / "WFLW_images" / "51--Dresses"
    images.mkdir(parents=True)
    cv2.imwrite(str(images / "x.jpg"), np.zeros((300, 300, 3), np.uint8))
    ann = tmp_path / "WFLW_annotations" / "list_98pt_rect_attr_train_test"
    ann.mkdir(parents=True)
    rng = np.random.default_rng(0)
    pts = rng.uniform(50, 250, size=(98, 2))
    line = " ".join(f"{v:.4f}" for v in pts.ravel()) + " 40 45 260 270 0 1 0 0 1 0 51--Dresses/x.jpg"
    bad = " ".join(["1"] * 100) + " 51--Dresses/x.jpg"
    missing = line.replace("51--Dresses/x.jpg", "51--Dresses/nope.jpg")
    (ann / "list_98pt_rect_attr_test.txt").write_text("\n".join([line, bad, missing]) + "\n")
    with pytest.warns(UserWarning) as rec:
        (s,) = read_dataset(tmp_path, "wflw")
    msg = str(rec[0].message)
    assert "skipped 2 of 3 files: " in msg and "1 bad WFLW line" in msg and "1 missing image" in msg
    assert "list_98pt_rect_attr_test.txt:2" in msg  # the example names file:line
    np.testing.assert_allclose(s.landmarks, pts, atol=1e-4)
    np.testing.assert_allclose(s.box, [40, 45, 260, 270])
    assert s.image_path == images / "x.jpg"
    # The list file itself can be given as the root.
    with pytest.warns(UserWarning, match="skipped 2 of 3"):
        (s2,) = read_dataset(ann / "list_98pt_rect_attr_test.txt", "wflw")
    assert s2.image_path == s.image_path


# ---- Biwi --------------------------------------------------------------------------------------

def hopenet_biwi_angles(rot: np.ndarray) -> np.ndarray:
    """The Biwi reading of the loaders of 300W-LP-trained models (Hopenet, FSA-Net), as reference."""
    m = rot.T
    roll = -np.degrees(np.arctan2(m[1, 0], m[0, 0]))
    yaw = -np.degrees(np.arctan2(-m[2, 0], np.hypot(m[2, 1], m[2, 2])))
    pitch = np.degrees(np.arctan2(m[2, 1], m[2, 2]))
    return np.array([yaw, pitch, roll])


def write_biwi_frame(folder: Path, frame: int, rot: np.ndarray, centre, image=True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rows = "\n".join(" ".join(f"{v:.6f}" for v in r) for r in rot)
    (folder / f"frame_{frame:05d}_pose.txt").write_text(f"{rows} \n\n{' '.join(map(str, centre))} \n")
    if image:
        cv2.imwrite(str(folder / f"frame_{frame:05d}_rgb.png"), np.zeros((480, 640, 3), np.uint8))


def test_biwi_rotation_matches_the_300wlp_convention_and_projects_the_head(tmp_path):
    from mnn_edge.data.readers.biwi import FACE_SIZE_MM, biwi_angles
    from mnn_edge.geometry import euler_to_matrix

    rng = np.random.default_rng(1)
    for _ in range(20):
        yaw, pitch, roll = rng.uniform(-70, 70), rng.uniform(-50, 50), rng.uniform(-40, 40)
        c = np.diag([1.0, -1.0, -1.0])
        rot = c @ euler_to_matrix(yaw, pitch, roll) @ c
        np.testing.assert_allclose(biwi_angles(rot), [yaw, pitch, roll], atol=1e-9)
        np.testing.assert_allclose(hopenet_biwi_angles(rot), [yaw, pitch, roll], atol=1e-9)
    seq = tmp_path / "hpdb" / "01"
    rot = np.diag([1.0, -1.0, -1.0]) @ euler_to_matrix(30, -10, 5) @ np.diag([1.0, -1.0, -1.0])
    write_biwi_frame(seq, 3, rot, (0.0, 0.0, 1000.0))
    write_biwi_frame(seq, 4, rot, (0.0, 0.0, 1000.0), image=False)
    write_biwi_frame(seq, 5, rot, (0.0, 0.0, 1000.0))
    (seq / "frame_00005_pose.txt").write_text("1 0 0\n0 1 0\n")
    with pytest.warns(UserWarning, match="skipped 2 of 3 files: 1 (missing image|bad pose file), 1 "):
        (s,) = read_dataset(tmp_path, "biwi")
    np.testing.assert_allclose(s.angles, [30, -10, 5], atol=1e-3)  # 6 decimals on disk
    half = 0.5 * FACE_SIZE_MM * 517.679 / 1000.0  # no rgb.cal: Biwi's own RGB intrinsics
    np.testing.assert_allclose(s.box, [320 - half, 240.5 - half, 320 + half, 240.5 + half])
    assert s.landmarks is None and s.image_path.name == "frame_00003_rgb.png"
    # With rgb.cal: the centre goes through its extrinsics and intrinsics.
    (seq / "rgb.cal").write_text("500 0 300\n0 500 200\n0 0 1\n\n0 0 0 0\n\n1 0 0\n0 1 0\n0 0 1\n\n"
                                 "-25 0 0\n")
    (s,) = read_dataset(seq / "frame_00003_pose.txt", "biwi")
    cx = 500 * -25 / 1000 + 300
    np.testing.assert_allclose((s.box[0] + s.box[2]) / 2, cx)
    np.testing.assert_allclose(s.box[3] - s.box[1], FACE_SIZE_MM * 500 / 1000)


def test_landmarks_a_little_outside_the_image_are_kept(tmp_path):
    """A jaw cut by the image border is legitimate (the crop pads); only landmarks farther out
    than OUTSIDE_TOLERANCE of the face size count as broken."""
    write_face(tmp_path, "cut", (0, 0, 0, 20, 100, 50), size=200)  # face centred 20 px from the left edge
    (s,) = read_dataset(tmp_path, "synthetic")
    assert s.landmarks[:, 0].min() < -10
