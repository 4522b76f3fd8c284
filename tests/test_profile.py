"""Face profiling: the geometry on a face of known 3D shape (no MediaPipe), the dataset command with it."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from mnn_edge.data.profile.poses import FRONTAL_DEG, MIN_TARGET_YAW, draw_target, rotation_between
from mnn_edge.data.profile.render import render_profile
from mnn_edge.data.profile.topology import MeshTopology, boundary_loop, load_topology
from mnn_edge.errors import MnnEdgeError
from mnn_edge.geometry import euler_to_matrix, fit_translation_scale, matrix_to_euler, project, rotated_depth

MEDIAPIPE = Path(__file__).resolve().parents[1].parent / "shared/models/mediapipe"
FSANET = MEDIAPIPE.parent / "fsanet"
SIZE = 320
SOURCE_POSE = np.array([12.0, -6.0, 4.0, 160.0, 165.0, 9.0])  # angles deg, centre px, px per unit


def canonical_vertices() -> np.ndarray:
    lines = (MEDIAPIPE / "canonical_face_model.obj").read_text().splitlines()
    return np.array([[float(v) for v in ln.split()[1:4]] for ln in lines if ln.startswith("v ")])


@pytest.fixture(scope="module")
def known_face():
    """The canonical face (x right, y up, z toward the camera: the toolkit's axes) posed by SOURCE_POSE
    in a textured picture: mesh in pixels with depth, landmarks = projected mesh vertices."""
    if not MEDIAPIPE.is_dir():
        pytest.skip(f"{MEDIAPIPE} not present")
    verts = canonical_vertices()
    topo = load_topology(MEDIAPIPE / "canonical_face_model.obj")
    xy = project(verts, SOURCE_POSE)
    mesh = np.column_stack([xy, SOURCE_POSE[5] * rotated_depth(verts, SOURCE_POSE)])
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8), (0, 0), 1.5)
    return verts, topo, mesh, image


def seen_vertices(mesh: np.ndarray, topo) -> np.ndarray:
    """68 vertices spread over the face that the source shows (an annotated landmark is a seen point;
    the closed mouth's inner-lip vertices lie behind the lips at the same pixels)."""
    from mnn_edge.data.profile.render import _surface_depth

    ids = np.arange(0, 468, 6)
    front = np.abs(_surface_depth(mesh, topo, mesh[ids, :2], SIZE, SIZE) - mesh[ids, 2]) < 0.05
    assert front.sum() >= 68
    return ids[front][:68]


def test_topology_is_the_oval_of_the_canonical_mesh(known_face):
    _, topo, _, _ = known_face
    assert topo.triangles.shape == (898, 3) and len(topo.oval) == 36
    assert {10, 152, 234, 454} <= set(topo.oval.tolist())  # forehead top, chin, the two face sides
    with pytest.raises(MnnEdgeError, match="no single boundary loop"):
        boundary_loop(np.array([[0, 1, 2], [0, 2, 3], [0, 3, 1], [1, 3, 2]]))  # closed: no boundary
    with pytest.raises(MnnEdgeError, match="several loops"):
        boundary_loop(np.array([[0, 1, 2], [3, 4, 5]]))


@pytest.mark.parametrize("target", [(50.0, 20.0, 4.0), (-40.0, -25.0, 4.0), (12.0, 30.0, 4.0), (70.0, 0.0, 4.0)])
def test_render_lands_the_landmarks_where_the_label_says(known_face, target):
    """The render's landmarks are the known 3D points posed by the label (within 1 px), and the label
    read back from them is the target (within 1 degree): the sign conventions are pinned."""
    verts, topo, mesh, image = known_face
    LANDMARK_IDS = seen_vertices(mesh, topo)
    source_lm = project(verts[LANDMARK_IDS], SOURCE_POSE)
    out = render_profile(image, mesh, topo, source_lm, rotation_between(SOURCE_POSE[:3], np.array(target)))
    fitted = fit_translation_scale(verts[LANDMARK_IDS], target, out.landmarks)
    residual = np.linalg.norm(project(verts[LANDMARK_IDS], fitted) - out.landmarks, axis=1)
    assert residual.max() < 1.0
    assert fitted[5] == pytest.approx(SOURCE_POSE[5], rel=0.01)  # a rotation keeps the face's size
    # The source's angles (what a wrong sign would leave) do not describe the render.
    wrong = fit_translation_scale(verts[LANDMARK_IDS], tuple(SOURCE_POSE[:3]), out.landmarks)
    assert np.linalg.norm(project(verts[LANDMARK_IDS], wrong) - out.landmarks, axis=1).mean() > 5.0
    # Landmarks on the far side of a strongly turned face are marked hidden, the near side seen.
    assert 0.3 < out.visibility.mean() <= 1.0
    if abs(target[0]) >= 50:
        assert out.visibility.mean() < 1.0


def test_render_carries_the_texture_with_the_surface(known_face):
    """A seen landmark shows in the render the pixel it showed in the source."""
    verts, topo, mesh, image = known_face
    LANDMARK_IDS = seen_vertices(mesh, topo)
    source_lm = project(verts[LANDMARK_IDS], SOURCE_POSE)
    out = render_profile(image, mesh, topo, source_lm, rotation_between(SOURCE_POSE[:3], np.array([35.0, 10.0, 4.0])))

    def at(img, pts):
        return img[np.rint(pts[:, 1]).astype(int), np.rint(pts[:, 0]).astype(int)].astype(float)

    seen = out.visibility > 0
    same = np.abs(at(out.image, out.landmarks[seen]) - at(image, source_lm[seen])).mean()
    shuffled = np.abs(at(out.image, out.landmarks[seen]) - at(image, source_lm[seen][::-1])).mean()
    assert same < 0.35 * shuffled


def test_identity_rotation_leaves_the_picture(known_face):
    verts, topo, mesh, image = known_face
    LANDMARK_IDS = seen_vertices(mesh, topo)
    source_lm = project(verts[LANDMARK_IDS], SOURCE_POSE)
    out = render_profile(image, mesh, topo, source_lm, np.eye(3))
    np.testing.assert_allclose(out.landmarks, source_lm, atol=1e-6)
    assert np.abs(out.image.astype(int) - image.astype(int)).mean() < 1.0
    assert out.in_frame


def test_targets_turn_a_turned_face_further_and_keep_its_roll():
    rng = np.random.default_rng(0)
    for source in ([25.0, 3.0, -7.0], [-18.0, -4.0, 2.0]):
        for _ in range(50):
            yaw, pitch, roll = draw_target(rng, np.array(source), 75.0, 40.0)
            assert np.sign(yaw) == np.sign(source[0]) and MIN_TARGET_YAW <= abs(yaw) <= 75.0
            assert abs(pitch) <= 40.0 and roll == source[2]
    signs = {np.sign(draw_target(rng, np.array([FRONTAL_DEG / 2, 0.0, 0.0]), 75.0, 40.0)[0]) for _ in range(40)}
    assert signs == {-1.0, 1.0}  # a frontal face turns either way
    q = rotation_between(np.array([10.0, 5.0, -3.0]), np.array([60.0, -20.0, -3.0]))
    assert matrix_to_euler(q @ euler_to_matrix(10.0, 5.0, -3.0)) == pytest.approx((60.0, -20.0, -3.0), abs=1e-9)


def test_topology_file_errors(tmp_path):
    with pytest.raises(MnnEdgeError, match="does not exist"):
        load_topology(tmp_path / "missing.obj")
    bad = tmp_path / "bad.obj"
    bad.write_text("v 0 0 0\nf 1 2 999\n")
    with pytest.raises(MnnEdgeError, match="468-point face mesh"):
        load_topology(bad)
    assert isinstance(MeshTopology(np.zeros((0, 3), int), np.zeros(0, int)), MeshTopology)


def test_profile_command_writes_a_complete_folder_and_resumes(tmp_path, shared_data):
    """End to end on the 4 AFLW2000-3D samples (true labels): renders readable as --format synthetic,
    counts in profile.json, a rerun into a stopped run's .partial keeps what was written."""
    pytest.importorskip("mediapipe", reason="the Face Landmarker is an optional extra (README)")
    from mnn_edge.data.cli import main
    from mnn_edge.data.readers import read_dataset

    out = tmp_path / "prof"
    args = ["profile", "--data", str(shared_data / "samples/aflw2000"), "--format", "aflw2000", "--out", str(out),
            "--mesh", str(MEDIAPIPE), "--teacher", str(FSANET), "--per-face", "2", "--no-progress"]
    assert main(args) == 0
    summary = json.loads((out / "profile.json").read_text())
    assert summary["sources"] == 4 and sum(summary["outcomes"].values()) == 8
    faces = read_dataset(out, "synthetic")
    assert len(faces) == summary["renders"] >= 4
    for f in faces:
        assert f.landmarks.shape == (68, 2) and abs(f.angles[0]) >= 20.0
    # A stopped run: its .partial holds one render; the rerun keeps it and makes the same files.
    first = sorted(out.glob("*.mat"))[0]
    partial = tmp_path / "again.partial"
    partial.mkdir()
    (partial / first.name).write_bytes(first.read_bytes())
    (partial / first.with_suffix(".jpg").name).write_bytes(first.with_suffix(".jpg").read_bytes())
    assert main([*args[:6], str(tmp_path / "again"), *args[7:]]) == 0
    again = json.loads((tmp_path / "again/profile.json").read_text())
    assert again["outcomes"].get("kept", 0) >= 1 and again["renders"] == summary["renders"]
    assert not partial.exists()
    with pytest.raises(MnnEdgeError, match="already exists"):
        main(args)


def test_mediapipe_is_imported_only_by_data_preparation():
    """MediaPipe is an optional extra for profiling and labelling: inference, export, serving and
    training never import it, directly or through the modules that wrap it."""
    import ast

    root = Path(__file__).resolve().parents[1] / "mnn_edge"
    wrappers = ("mnn_edge.data.profile", "mnn_edge.data.teacher")
    allowed = ("data/profile/", "data/teacher/", "data/cli.py")
    offenders = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(n.split(".")[0] == "mediapipe" or n.startswith(wrappers) for n in names) \
                    and not rel.startswith(allowed):
                offenders.append(f"{rel}: {names}")
    assert offenders == []
