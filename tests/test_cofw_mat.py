"""mnn-data cofw: COFW's official .mat (images inside) -> .png + .pts that --format cofw reads."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from mnn_edge.data.cli import main as data_main
from mnn_edge.data.readers import load_image_rgb, read_dataset
from mnn_edge.data.readers.cofw_mat import ROW, load_cofw_mat
from mnn_edge.errors import MnnEdgeError

h5py = pytest.importorskip("h5py", reason="h5py (the 'data' extra) reads MATLAB v7.3 files")


POINTS_ = ROW // 3


def faces(n: int = 3, seed: int = 0):
    """n images (the second one grey) and their 87-number rows: 1-based x, y, occlusion flags."""
    rng = np.random.default_rng(seed)
    images, rows = [], []
    for i in range(n):
        h, w = 120 + 10 * i, 150
        im = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        images.append(im[..., 0] if i == 1 else im)
        x, y = rng.uniform(30, 110, POINTS_), rng.uniform(30, 100, POINTS_)
        occ = (rng.random(POINTS_) < 0.3).astype(float)
        rows.append(np.concatenate([x + 1.0, y + 1.0, occ]))
    return images, np.array(rows)


def write_v73(path, images, phis, images_key="IsT", phis_key="phisT"):
    """As MATLAB 7.3 writes it: a 512-byte user block with the MAT header text, dimensions
    reversed (numpy sees the transpose), the cell array as object references into #refs#."""
    with h5py.File(path, "w", userblock_size=512) as f:
        refs = f.create_group("#refs#")
        cell = f.create_dataset(images_key, (1, len(images)), dtype=h5py.ref_dtype)
        for i, im in enumerate(images):
            d = refs.create_dataset(f"im{i}", data=np.ascontiguousarray(im.T))
            d.attrs["MATLAB_class"] = np.bytes_("uint8")
            cell[0, i] = d.ref
        f.create_dataset(phis_key, data=np.ascontiguousarray(phis.T))
    with open(path, "r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2013 HDF5 schema 1.00 .")


def test_v73_file_converts_exactly(tmp_path, capsys):
    images, phis = faces()
    mat = tmp_path / "COFW_test_color.mat"
    write_v73(mat, images, phis)
    out = tmp_path / "cofw"
    assert data_main(["cofw", "--mat", str(mat), "--out", str(out), "--no-progress"]) == 0
    assert "wrote 3 faces" in capsys.readouterr().out
    samples = read_dataset(out, "cofw")
    assert [s.image_path.name for s in samples] == ["cofw_test_0001.png", "cofw_test_0002.png",
                                                    "cofw_test_0003.png"]
    for s, im, row in zip(samples, images, phis):
        rgb = load_image_rgb(s.image_path)
        expected = np.repeat(im[..., None], 3, axis=2) if im.ndim == 2 else im
        assert np.array_equal(rgb, expected)  # PNG: the release's own pixels, grey kept grey
        # 1-based in the release and in the .pts; the reader gives 0-based pixels.
        assert np.allclose(s.landmarks[:, 0], row[:POINTS_] - 1.0, atol=1e-3)
        assert np.allclose(s.landmarks[:, 1], row[POINTS_:2 * POINTS_] - 1.0, atol=1e-3)
        assert np.array_equal(s.visibility, 1.0 - row[2 * POINTS_:])
    with pytest.raises(MnnEdgeError, match="--force"):
        data_main(["cofw", "--mat", str(mat), "--out", str(out), "--no-progress"])
    assert data_main(["cofw", "--mat", str(mat), "--out", str(out), "--no-progress", "--force"]) == 0


def test_v5_file_and_training_split_names(tmp_path):
    images, phis = faces(2, seed=1)
    cell = np.empty((len(images), 1), dtype=object)
    for i, im in enumerate(images):
        cell[i, 0] = im
    mat = tmp_path / "COFW_train.mat"
    scipy.io.savemat(mat, {"IsTr": cell, "phisTr": phis})
    loaded, rows, split = load_cofw_mat(mat)
    assert split == "train" and np.array_equal(rows, phis)
    assert all(np.array_equal(a, b) for a, b in zip(loaded, images))


def test_bad_rows_are_skipped_and_bad_files_explained(tmp_path, capsys):
    images, phis = faces()
    phis[2, 5] = np.nan
    mat = tmp_path / "c.mat"
    write_v73(mat, images, phis)
    assert data_main(["cofw", "--mat", str(mat), "--out", str(tmp_path / "o"), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "wrote 2 faces" in printed and "skipped 1 NaN in landmarks" in printed
    assert len(read_dataset(tmp_path / "o", "cofw")) == 2
    wrong = tmp_path / "wrong.mat"
    scipy.io.savemat(wrong, {"Pose_Para": np.zeros((1, 7))})
    with pytest.raises(MnnEdgeError, match="not a COFW release file"):
        load_cofw_mat(wrong)
    short = tmp_path / "short.mat"
    write_v73(short, images, phis[:, :58])
    with pytest.raises(MnnEdgeError, match="87 numbers"):
        load_cofw_mat(short)
    junk = tmp_path / "junk.mat"
    junk.write_bytes(b"MATLAB 7.3 MAT-file" + b"\0" * 600)
    with pytest.raises(MnnEdgeError, match="could not be read as a COFW"):
        load_cofw_mat(junk)
    with pytest.raises(MnnEdgeError, match="not found"):
        load_cofw_mat(tmp_path / "missing.mat")
