import numpy as np
import onnx
import pytest
import torch

from mnn_edge.artifact import ModelKind, Precision
from mnn_edge.artifact.onnx_io import get_metadata
from mnn_edge.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from mnn_edge.errors import MnnEdgeError
from mnn_edge.export.cli import main as export_main
from mnn_edge.export.onnx_export import OPSET
from mnn_edge.model import MNN, init_weights
from mnn_edge.runtime import open_runner
from mnn_edge.runtime.inputs import random_input


def test_both_artifacts_are_valid_onnx_with_metadata(random_export):
    for name, kind, outputs in [("pose", ModelKind.POSE, ("pose",)),
                                ("mnn", ModelKind.FULL, ("pose", "pose_proj", "landmarks", "visibility"))]:
        model = onnx.load(str(random_export / f"{name}.onnx"))
        onnx.checker.check_model(model)
        assert model.opset_import[0].version == OPSET
        # BatchNorm is folded into every Conv; the exporter leaves it only after ConvTranspose
        producers = {o: n.op_type for n in model.graph.node for o in n.output}
        for n in model.graph.node:
            if n.op_type == "BatchNormalization":
                assert producers[n.input[0]] == "ConvTranspose"
        meta = get_metadata(model)
        assert meta.kind is kind and meta.outputs == outputs and meta.precision is Precision.FP32
        assert (meta.input_size, meta.channel_order, meta.num_landmarks) == (256, "RGB", 68)
        assert meta.landmark_scheme == "ibug68" and len(meta.mean) == 3
        assert [o.name for o in model.graph.output] == list(outputs)


def test_onnxruntime_matches_pytorch_for_batch_1_and_4(random_export, random_checkpoint):
    torch_runner = open_runner(random_checkpoint)
    with open_runner(random_export / "mnn.onnx") as ort_full, open_runner(random_export / "pose.onnx") as ort_pose:
        for batch in (1, 4):
            x = random_input(batch, seed=10 + batch)
            ref = torch_runner.infer(x)
            full = ort_full.infer(x)
            pose = ort_pose.infer(x)
            assert full["landmarks"].shape == (batch, 68, 2)
            assert full["visibility"].shape == (batch, 68)
            assert pose["pose"].shape == (batch, 6)
            assert np.abs(full["pose"] - ref["pose"]).max() <= 1e-4
            assert np.abs(pose["pose"] - ref["pose"]).max() <= 1e-4
            assert np.abs(full["landmarks"] - ref["landmarks"]).max() <= 0.05
            assert np.all((full["visibility"] >= 0) & (full["visibility"] <= 1))
            assert np.all((full["landmarks"] >= 0) & (full["landmarks"] <= 255))


def test_export_prints_parity_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "out"
    assert export_main(["--random-init", "--out", str(out), "-L", "5"]) == 0
    printed = capsys.readouterr()
    assert "RANDOM WEIGHTS" in printed.err
    parity = [line for line in printed.out.splitlines() if line.startswith("parity ")]
    assert len(parity) == 4 and all(line.endswith("ok") for line in parity), printed.out
    assert "tensorrt-compat pose.onnx: ok" in printed.out and "tensorrt-compat mnn.onnx: ok" in printed.out
    with pytest.raises(MnnEdgeError, match="already exist.*--force"):
        export_main(["--random-init", "--out", str(out), "-L", "5"])
    assert sorted(p.name for p in out.iterdir()) == ["mnn.onnx", "pose.onnx"]  # no temporaries left


def test_keep_heatmaps_adds_normalised_maps(tmp_path):
    assert export_main(["--random-init", "--out", str(tmp_path), "-L", "3", "--keep-heatmaps"]) == 0
    with open_runner(tmp_path / "mnn.onnx") as runner:
        out = runner.infer(random_input(1))
    assert out["heatmaps"].shape == (1, 3, 256, 256)
    assert np.allclose(out["heatmaps"].sum(axis=(2, 3)), 1.0, atol=1e-4)


def test_checkpoint_round_trip_and_landmark_mismatch(tmp_path):
    model = MNN(29)
    init_weights(model, seed=3)
    path = tmp_path / "cofw.pt"
    save_checkpoint(Checkpoint(model=model, landmark_scheme="cofw29", config={"lr": 1e-3}), path)
    back = load_checkpoint(path)
    assert back.model.num_landmarks == 29 and back.config == {"lr": 1e-3} and len(back.sha256) == 64
    for k, v in model.state_dict().items():
        assert torch.equal(v, back.model.state_dict()[k])
    with pytest.raises(MnnEdgeError, match="L = 29.*L = 68"):
        load_checkpoint(path, num_landmarks=68)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04truncated"])
def test_corrupt_checkpoint_is_one_clear_error(tmp_path, content, capsys):
    from mnn_edge.cli_util import run_cli

    bad = tmp_path / "bad.pt"
    bad.write_bytes(content)
    assert run_cli(export_main, ["--checkpoint", str(bad), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "bad.pt" in err[0]
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_missing_checkpoint_and_unwritable_output(tmp_path, capsys):
    from mnn_edge.cli_util import run_cli

    assert run_cli(export_main, ["--checkpoint", str(tmp_path / "nope.pt")]) == 1
    assert "checkpoint not found" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert run_cli(export_main, ["--random-init", "--out", str(blocker / "sub"), "-L", "2"]) == 1
    assert "cannot write" in capsys.readouterr().err


def test_export_without_checkpoint_explains_how(tmp_path, monkeypatch, capsys):
    from mnn_edge.cli_util import run_cli
    from mnn_edge.export import cli

    monkeypatch.setattr(cli, "default_checkpoint_path", lambda: tmp_path / "absent.pt")
    assert run_cli(export_main, ["--out", str(tmp_path)]) == 1
    assert "--checkpoint PATH or --random-init" in capsys.readouterr().err


def test_fp16_int8_flags_quantize_what_was_just_exported(random_export, tmp_path, monkeypatch, capsys):
    """--fp16 / --int8 run after the FP32 export on its files (the export itself is stubbed here:
    the real one is covered above and by the random_export fixture)."""
    import shutil

    from mnn_edge.export import exporter as pipeline

    out = tmp_path / "out"
    (out / "pose.fp16.onnx").parent.mkdir()
    (out / "pose.fp16.onnx").write_bytes(b"old")
    called = []
    monkeypatch.setattr(pipeline, "load_source", lambda cfg: called.append("load") or None)
    # an existing variant is refused before the (slow) checkpoint load and export
    with pytest.raises(MnnEdgeError, match="pose.fp16.onnx already exist; pass --force"):
        export_main(["--random-init", "--out", str(out), "--fp16"])
    assert called == []

    def fake_export(cfg, ckpt):
        paths = {ModelKind.POSE: cfg.out / "pose.onnx", ModelKind.FULL: cfg.out / "mnn.onnx"}
        for path in paths.values():
            shutil.copy(random_export / path.name, path)
        return paths

    monkeypatch.setattr(pipeline, "export_fp32", fake_export)
    assert export_main(["--random-init", "--out", str(out), "--fp16", "--force", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["mnn.fp16.onnx", "mnn.onnx", "pose.fp16.onnx", "pose.onnx"]
    assert "drift pose.fp16.onnx vs pose.onnx" in printed and "drift mnn.fp16.onnx vs mnn.onnx" in printed
    assert get_metadata(onnx.load(str(out / "mnn.fp16.onnx"))).precision is Precision.FP16


def test_quantize_flags_are_checked_once_and_only_with_int8_or_fp16():
    from mnn_edge.export.cli import build_parser, config_from_args

    def cfg(*argv):
        return config_from_args(build_parser().parse_args(["--random-init", *argv]))

    assert cfg().quantize is None  # no --int8/--fp16: no quantize step at all
    with pytest.raises(MnnEdgeError, match="--calib-subset only applies with --int8 or --fp16"):
        cfg("--calib-subset", "train")
    with pytest.raises(MnnEdgeError, match="--calib-subset applies to --calib DIR"):
        cfg("--int8", "--calib-synthetic", "4", "--calib-subset", "train")
    with pytest.raises(MnnEdgeError, match="--int8 needs calibration images"):
        cfg("--int8")
    with pytest.raises(MnnEdgeError, match="choose one calibration source"):
        cfg("--int8", "--calib", "x", "--calib-synthetic", "4")
    assert cfg("--fp16").quantize.fp16
