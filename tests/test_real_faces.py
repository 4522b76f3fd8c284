"""Real faces: the keypoints-csv reader, the person-disjoint split, teacher pose labels (file format,
resume, provenance) and mixed-source sampling."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from mnn_edge.data.cli import main as data_main
from mnn_edge.data.readers import HOLDOUT_PERCENT, in_subset, read_dataset
from mnn_edge.data.readers import pose_labels as pl
from mnn_edge.data.teacher.fsanet import TEACHER_MARGIN, load_teacher, teacher_box
from mnn_edge.errors import MnnEdgeError
from mnn_edge.geometry import project
from mnn_edge.meanface import mean_face
from mnn_edge.train.config import build_config
from mnn_edge.train.loop import MixtureSampler

PEOPLE = ["Ann_Lee", "Bo_Chen", "Cy_Diaz", "Di_Evans", "Ed_Fox", "Flo_Gray", "Gus_Hale", "Hu_Ito"]


def write_csv_folder(folder: Path, rows: list[list], size: int = 160) -> None:
    """keypoints.csv with a header row plus a grey image for every name that is a .jpg."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["," + ",".join(str(i) for i in range(136))]
    for row in rows:
        name = str(row[0])
        if name.endswith(".jpg") and not (folder / name).exists():
            cv2.imwrite(str(folder / name), np.full((size, size, 3), 100, np.uint8))
        lines.append(",".join(str(v) for v in row))
    (folder / "keypoints.csv").write_text("\n".join(lines) + "\n")


def face_points(yaw: float = 0.0, centre=(80.0, 85.0), scale: float = 40.0) -> np.ndarray:
    return project(mean_face(), np.array([yaw, 0.0, 0.0, centre[0], centre[1], scale]))


def good_row(name: str, yaw: float = 0.0) -> list:
    return [name, *np.round(face_points(yaw).reshape(-1), 3).tolist()]


def test_keypoints_csv_reads_landmarks_in_image_pixels(tmp_path):
    write_csv_folder(tmp_path, [good_row("Ann_Lee_00.jpg", 10.0), good_row("Bo_Chen_03.jpg")])
    samples = read_dataset(tmp_path, "keypoints-csv")
    assert [s.image_path.name for s in samples] == ["Ann_Lee_00.jpg", "Bo_Chen_03.jpg"]
    np.testing.assert_allclose(samples[0].landmarks, face_points(10.0), atol=1e-3)
    assert samples[0].angles is None and samples[0].pose is None and samples[0].source == "keypoints-csv"
    # the CSV file itself is accepted as the root too
    assert len(read_dataset(tmp_path / "keypoints.csv", "keypoints-csv")) == 2


def test_keypoints_csv_bad_rows_are_skipped_and_counted(tmp_path):
    far = face_points() + 400.0  # wholly outside the 160 px image
    rows = [good_row("Ann_Lee_00.jpg"),
            good_row("Ann_Lee_01.jpg")[:-3],  # wrong column count
            ["Bo_Chen_00.jpg", "x", *good_row("a")[2:]],  # not a number
            good_row("Cy_Diaz_00.png"),  # names an image that does not exist
            ["Di_Evans_00.jpg", *far.reshape(-1).tolist()]]
    write_csv_folder(tmp_path, rows)
    (tmp_path / "Cy_Diaz_00.png").unlink(missing_ok=True)
    with pytest.warns(UserWarning) as record:
        samples = read_dataset(tmp_path, "keypoints-csv")
    assert len(samples) == 1
    text = str(record[0].message)
    assert "skipped 4 of 5 files" in text
    for reason in ("wrong column count", "bad number", "missing image", "landmarks outside the image"):
        assert reason in text


def test_keypoints_csv_nothing_usable_is_an_error(tmp_path):
    write_csv_folder(tmp_path, [good_row("Ann_Lee_00.jpg")[:10]])
    with pytest.warns(UserWarning), pytest.raises(MnnEdgeError, match="no usable keypoints-csv faces"):
        read_dataset(tmp_path, "keypoints-csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MnnEdgeError, match="no keypoints-csv annotation files"):
        read_dataset(tmp_path / "empty", "keypoints-csv")


def test_person_disjoint_split_never_puts_a_person_on_both_sides(tmp_path):
    rows = [good_row(f"Person_{p}_{k:02d}.jpg") for p in range(30) for k in range(3)]
    write_csv_folder(tmp_path, rows)
    train = read_dataset(tmp_path, "keypoints-csv", subset="train")
    held = read_dataset(tmp_path, "keypoints-csv", subset="heldout")
    person = lambda s: s.image_path.stem.rsplit("_", 1)[0]  # noqa: E731
    assert len(train) + len(held) == len(rows)
    assert not {person(s) for s in train} & {person(s) for s in held}
    assert all(in_subset(person(s), "heldout") for s in held)
    # the hash puts about HOLDOUT_PERCENT of many people aside
    share = np.mean([in_subset(f"Person_{i}", "heldout") for i in range(4000)])
    assert abs(share - HOLDOUT_PERCENT / 100) < 0.02
    write_csv_folder(tmp_path / "one", [good_row("Person_1_00.jpg")])
    assert not in_subset("Person_1", "heldout")
    with pytest.raises(MnnEdgeError, match="the heldout part of .* is empty"):
        read_dataset(tmp_path / "one", "keypoints-csv", subset="heldout")
    with pytest.raises(MnnEdgeError, match="cannot be split by person"):
        read_dataset(Path(__file__).parent, "300w", subset="train")


@pytest.fixture(scope="module")
def teacher_dir(shared_data) -> Path:
    folder = shared_data.parent / "models" / "fsanet"
    if not folder.is_dir():
        pytest.skip(f"{folder} not present")
    return folder


def test_teacher_reads_the_true_labelled_aflw2000_samples(shared_data, teacher_dir):
    """The teacher with its crop scores about what its README and docs/TRAINING.md say (4.5 deg)."""
    from mnn_edge.data.readers import load_image_rgb

    teacher = load_teacher(teacher_dir)
    samples = read_dataset(shared_data / "samples" / "aflw2000", "aflw2000")
    err = [np.abs(teacher.predict(load_image_rgb(s.image_path), s.landmarks) - s.angles) for s in samples]
    assert np.mean(err) < 5.0
    prov = teacher.provenance()
    assert len(prov["models"]) == 2 and all(len(m["sha256"]) == 64 for m in prov["models"])
    assert prov["crop"]["margin"] == TEACHER_MARGIN


def test_teacher_box_is_widened_and_clipped():
    pts = np.array([[20.0, 30.0], [60.0, 80.0]])
    assert teacher_box(pts, 100, 100, 0.5) == (0, 5, 81, 100)
    assert teacher_box(pts, 1000, 1000, 0.0) == (20, 30, 61, 81)


def test_teacher_folder_errors_name_what_was_expected(tmp_path):
    with pytest.raises(MnnEdgeError, match="does not exist; expected a folder of FSA-Net ONNX models"):
        load_teacher(tmp_path / "nope")
    with pytest.raises(MnnEdgeError, match=r"no \.onnx file"):
        load_teacher(tmp_path)
    (tmp_path / "bad.onnx").write_bytes(b"not onnx at all")
    with pytest.raises(MnnEdgeError, match="not a loadable ONNX model"):
        load_teacher(tmp_path)


def test_teacher_with_the_wrong_input_shape_is_refused(tmp_path, random_export):
    import shutil

    shutil.copy(random_export / "pose.onnx", tmp_path / "pose.onnx")
    with pytest.raises(MnnEdgeError, match=r"takes tensor\(float\) .*expected a folder of FSA-Net"):
        load_teacher(tmp_path)


def test_pseudo_label_writes_provenance_resumes_and_attaches(tmp_path, teacher_dir, capsys):
    data = tmp_path / "real"
    write_csv_folder(data, [good_row(f"{p}_00.jpg", yaw) for p, yaw in zip(PEOPLE, range(-40, 40, 10))])
    out = tmp_path / "labels.jsonl"
    args = ["pseudo-label", "--teacher", str(teacher_dir), "--data", str(data), "--out", str(out), "--no-progress"]
    assert data_main(args) == 0
    header, labels = pl.read_labels(out)
    assert header["teacher"]["kind"] == "fsanet" and header["data_format"] == "keypoints-csv"
    assert sorted(labels) == sorted(f"{p}_00.jpg" for p in PEOPLE)

    # A run killed half-way: only OUT.partial, cut mid-line. It does not read as complete, and
    # the next run keeps what it holds and labels only the rest.
    lines = out.read_text().splitlines()
    out.unlink()
    part = pl.partial_path(out)
    part.write_text("\n".join(lines[:4]) + "\n" + lines[4][:15])
    with pytest.raises(MnnEdgeError, match="stopped half-way"):
        pl.read_labels(out)
    assert data_main(args) == 0
    assert "3 kept from a stopped run" in capsys.readouterr().out
    assert not part.exists()
    _, again = pl.read_labels(out)
    assert again.keys() == labels.keys()
    for key in labels:
        np.testing.assert_allclose(again[key], labels[key], atol=1e-3)

    with pytest.raises(MnnEdgeError, match="already exists"):
        data_main(args)
    samples = read_dataset(data, "keypoints-csv", pose_labels=out)
    assert all(s.pose_origin == "teacher" for s in samples)
    np.testing.assert_allclose(samples[0].angles, labels[samples[0].image_path.name])


def test_labels_file_without_footer_or_for_other_faces_is_refused(tmp_path):
    data = tmp_path / "real"
    write_csv_folder(data, [good_row("Ann_Lee_00.jpg")])
    header = json.dumps(pl.make_header({"kind": "fsanet"}, data, "keypoints-csv"))
    f = tmp_path / "l.jsonl"
    f.write_text(header + "\n" + json.dumps({"image": "Ann_Lee_00.jpg", "angles": [1, 2, 3]}) + "\n")
    with pytest.raises(MnnEdgeError, match="no closing line"):
        pl.read_labels(f)
    f.write_text(header + "\n" + json.dumps({"image": "other.jpg", "angles": [1, 2, 3]}) + "\n"
                 + json.dumps({"complete": True, "n": 1}) + "\n")
    with pytest.raises(MnnEdgeError, match="name none of the 1 faces"):
        read_dataset(data, "keypoints-csv", pose_labels=f)
    f.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(MnnEdgeError, match="not a pose labels file"):
        pl.read_labels(f)


def test_mixture_sampler_follows_the_weights_and_shards_by_rank():
    s = MixtureSampler([100, 900], [3.0, 1.0], seed=1)
    idx = np.array(list(s))
    assert len(idx) == 1000 and idx.min() >= 0 and idx.max() < 1000
    assert abs(np.mean(idx < 100) - 0.75) < 0.05  # source 0 drawn 3:1 although it is 9x smaller
    s.set_epoch(1)
    assert list(s) != idx.tolist()
    ranks = [list(MixtureSampler([100, 900], [3.0, 1.0], seed=1, rank=r, world=2)) for r in (0, 1)]
    assert sorted(ranks[0] + ranks[1]) == sorted(idx.tolist())


def test_sources_config_parses_and_rejects_mistakes():
    cfg = build_config({"sources": [{"data": "real", "format": "keypoints-csv", "subset": "train",
                                     "pose_labels": "l.jsonl", "weight": 2},
                                    {"data": "synth"}]}, {})
    real, synth = cfg.train_sources()
    assert real.weight == 2.0 and real.pose_labels == Path("l.jsonl") and synth.format == "synthetic"
    assert build_config({}, {"data": "d", "subset": "heldout"}).train_sources()[0].subset == "heldout"
    for bad, message in (({"sources": [{"data": "a", "weight": 0}]}, "weight must be a positive"),
                         ({"sources": [{"data": "a", "colour": 1}]}, "unknown key"),
                         ({"sources": [{"data": "a", "subset": "test"}]}, "subset must be one of"),
                         ({"sources": [{"data": "a"}], "data": "b"}, "give the training data once")):
        with pytest.raises(MnnEdgeError, match=message):
            build_config(bad, {})


def test_eval_names_teacher_labels_and_keeps_frontal_faces(tmp_path, capsys):
    """mnn-eval --pose-labels scores against the teacher and says so; --frontal keeps faces whose
    reference angles are all small, and the zero baseline's mean |predicted| is then 0."""
    data = tmp_path / "real"
    yaws = {"Ann_Lee_00.jpg": 2.0, "Bo_Chen_00.jpg": -30.0, "Cy_Diaz_00.jpg": 4.0}
    write_csv_folder(data, [good_row(name, yaw) for name, yaw in yaws.items()])
    header = json.dumps(pl.make_header({"kind": "test"}, data, "keypoints-csv"))
    lines = [json.dumps({"image": n, "angles": [y, 1.0, -2.0]}) for n, y in yaws.items()]
    labels = tmp_path / "labels.jsonl"
    labels.write_text("\n".join([header, *lines, json.dumps({"complete": True, "n": 3})]) + "\n")
    out = tmp_path / "r.json"
    from mnn_edge.evaluate.cli import main as eval_main

    assert eval_main(["--baseline", "zero", "--data", str(data), "--format", "keypoints-csv", "--pose-labels",
                      str(labels), "--frontal", "5", "--json", str(out), "--no-progress"]) == 0
    res = json.loads(out.read_text())
    assert res["n"] == 2 and res["pose_reference"] == "teacher labels"
    assert res["mae_yaw"] == pytest.approx(3.0) and res["mae_pitch"] == pytest.approx(1.0)
    assert res["pred_abs_yaw"] == 0.0 and res["extra"]["frontal_deg"] == 5.0
    assert "vs teacher labels" in capsys.readouterr().out
    with pytest.raises(MnnEdgeError, match="no face has pose labels within"):
        eval_main(["--baseline", "zero", "--data", str(data), "--format", "keypoints-csv", "--frontal", "5"])


def test_mixed_run_trains_on_real_and_synthetic_with_teacher_pose(synthetic_dir, tmp_path):
    """A [[sources]] run: the real faces' batch entries carry the teacher pose (pose_valid) and their
    landmarks, the synthetic ones their exact labels; both sources are drawn, validation on the
    held-out people works, and the run writes its checkpoint with the sources in its config."""
    from mnn_edge.train.cli import main as train_main
    from mnn_edge.train.loop import LAST, Trainer

    data = tmp_path / "real"
    names = [f"Person_{p}_00.jpg" for p in range(12)]
    write_csv_folder(data, [good_row(n, 5.0 * i) for i, n in enumerate(names)], size=200)
    header = json.dumps(pl.make_header({"kind": "test"}, data, "keypoints-csv"))
    lines = [json.dumps({"image": n, "angles": [5.0 * i, 0.0, 0.0]}) for i, n in enumerate(names)]
    labels = tmp_path / "labels.jsonl"
    labels.write_text("\n".join([header, *lines, json.dumps({"complete": True, "n": len(names)})]) + "\n")
    config = tmp_path / "mix.toml"
    config.write_text(f"""
out = "{tmp_path / 'run'}"
batch = 4
epochs = 1
epoch_steps = 2
val_data = "{data}"
val_format = "keypoints-csv"
val_subset = "heldout"
val_pose_labels = "{labels}"
schedule = "cpu-starter"
device = "cpu"
[[sources]]
data = "{data}"
format = "keypoints-csv"
subset = "train"
pose_labels = "{labels}"
[[sources]]
data = "{synthetic_dir}"
limit = 8
""")
    from mnn_edge.train.cli import build_parser, config_from_args

    cfg = config_from_args(build_parser().parse_args(["--config", str(config)]))
    trainer = Trainer(cfg)
    assert trainer.val_samples and all(s.pose_origin == "teacher" for s in trainer.val_samples)
    real = [i for i, s in enumerate(trainer.dataset.samples) if s.source == "keypoints-csv"]
    assert real and all(trainer.dataset.samples[i].pose_origin == "teacher" for i in real)
    item = trainer.dataset[real[0]]
    assert bool(item["pose_valid"]) and bool(item["lnd_valid"].all()) and not bool(item["vis_valid"].any())
    drawn = set(trainer.sampler)
    assert drawn & set(real) and drawn - set(real)
    assert train_main(["--config", str(config), "--no-progress"]) == 0
    from mnn_edge.checkpoint import load_checkpoint

    ck = load_checkpoint(tmp_path / "run" / LAST)
    assert ck.state["step"] == 2 and [s["format"] for s in ck.config["sources"]] == ["keypoints-csv", "synthetic"]
    assert "val_mae" in ck.state["log"][-1]
