"""Triton model repositories from artifacts: every config.pbtxt parsed with Triton's own schema
(tritonclient's model_config_pb2), not a regex."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc] (the dev extra) parses Triton's configs")
from google.protobuf import text_format  # noqa: E402
from tritonclient.grpc import model_config_pb2 as mc  # noqa: E402
from trt_double.install import installed  # noqa: E402
from trt_double.models import write_tiny  # noqa: E402

from mnn_edge.artifact import METADATA_KEY, ModelMetadata, Precision  # noqa: E402
from mnn_edge.artifact.triton import ServingConfig, write_triton_model  # noqa: E402
from mnn_edge.cli_util import run_cli  # noqa: E402
from mnn_edge.errors import MnnEdgeError  # noqa: E402


def parse(folder) -> mc.ModelConfig:
    return text_format.Parse((folder / "config.pbtxt").read_text(encoding="utf-8"), mc.ModelConfig())


def test_export_writes_a_repository_triton_can_read(random_export, tmp_path, capsys):
    from mnn_edge.export.cli import main as export_main

    out, repo = tmp_path / "export", tmp_path / "repo"
    assert export_main(["--onnx", str(random_export / "pose.onnx"), str(random_export / "mnn.onnx"), "--out",
                        str(out), "--fp16", "--triton-repo", str(repo), "--triton-max-batch", "16",
                        "--triton-instances", "2", "--no-progress"]) == 0
    assert sorted(p.name for p in repo.iterdir()) == ["mnn_fp16", "pose_fp16"]
    c = parse(repo / "mnn_fp16")
    assert c.name == "mnn_fp16" and c.platform == "onnxruntime_onnx" and c.max_batch_size == 16
    assert [(i.name, i.data_type, list(i.dims)) for i in c.input] == [("image", mc.TYPE_FP32, [3, 256, 256])]
    assert [(o.name, list(o.dims)) for o in c.output] == [("pose", [6]), ("pose_proj", [6]), ("landmarks", [68, 2]),
                                                          ("visibility", [68])]
    assert list(c.dynamic_batching.preferred_batch_size) == [4, 8]
    assert c.instance_group[0].count == 2 and c.instance_group[0].kind == mc.ModelInstanceGroup.KIND_CPU
    meta = ModelMetadata.from_json(c.parameters[METADATA_KEY].string_value)  # a client reads it back
    assert meta.precision is Precision.FP16 and meta.num_landmarks == 68
    assert (repo / "mnn_fp16" / "1" / "model.onnx").read_bytes() == (out / "mnn.fp16.onnx").read_bytes()
    assert "wrote " in capsys.readouterr().out


def test_a_plan_takes_its_batch_limit_from_its_profile(tmp_path, capsys):
    from mnn_edge.engine_build.cli import main as build_main

    src = write_tiny(tmp_path / "export", Precision.FP16)
    with installed("10.3"):
        assert run_cli(build_main, [str(src), "--max-batch", "4", "--out", str(tmp_path / "e"), "--no-progress",
                                    "--no-timing-cache", "--triton-repo", str(tmp_path / "repo"),
                                    "--triton-kind", "gpu"]) == 0
    c = parse(tmp_path / "repo" / "pose_fp16")
    assert c.platform == "tensorrt_plan" and c.max_batch_size == 4
    assert list(c.dynamic_batching.preferred_batch_size) == [4]  # 8 is beyond the profile
    assert c.instance_group[0].kind == mc.ModelInstanceGroup.KIND_GPU
    assert (tmp_path / "repo" / "pose_fp16" / "1" / "model.plan").is_file()


def test_metadata_survives_quotes_and_non_ascii(random_export, tmp_path):
    import onnx

    from mnn_edge.artifact.onnx_io import get_metadata, set_metadata

    model = onnx.load(str(random_export / "pose.onnx"))
    meta = get_metadata(model)
    odd = meta.with_(extra={"note": 'a "quoted" path\\x, 25 °C, Ünïcode\nline'})
    set_metadata(model, odd)
    onnx.save(model, str(tmp_path / "pose.onnx"))
    c = parse(write_triton_model(tmp_path / "pose.onnx", tmp_path / "repo"))
    assert json.loads(c.parameters[METADATA_KEY].string_value)["extra"] == odd.extra


def test_bad_requests_are_one_line(random_export, tmp_path):
    repo = tmp_path / "repo"
    write_triton_model(random_export / "pose.onnx", repo)
    with pytest.raises(MnnEdgeError, match="already exists in the Triton repository; pass --force"):
        write_triton_model(random_export / "pose.onnx", repo)
    with pytest.raises(MnnEdgeError, match="not a usable Triton model name"):
        write_triton_model(random_export / "pose.onnx", repo, name="a b")
    with pytest.raises(MnnEdgeError, match=r"max batch size must be 1\.\.4096"):
        write_triton_model(random_export / "pose.onnx", repo, ServingConfig(max_batch_size=0), force=True)
    with pytest.raises(MnnEdgeError, match=r"max batch size must be 1\.\.4096"):
        write_triton_model(random_export / "pose.onnx", repo, ServingConfig(max_batch_size=100_000_000_000),
                           force=True)
    (tmp_path / "x.pt").write_bytes(b"")
    with pytest.raises(MnnEdgeError, match="serves .onnx and .plan"):
        write_triton_model(tmp_path / "x.pt", repo)


def test_triton_only_serves_an_earlier_export_without_exporting(random_export, tmp_path, capsys):
    import shutil

    from mnn_edge.export.cli import main as export_main

    out, repo = tmp_path / "export", tmp_path / "repo"
    out.mkdir()
    for name in ("pose.onnx", "mnn.onnx"):
        shutil.copyfile(random_export / name, out / name)
    before = sorted(p.name for p in out.iterdir())
    assert run_cli(export_main, ["--out", str(out), "--triton-repo", str(repo), "--triton-only"]) == 0
    assert sorted(p.name for p in repo.iterdir()) == ["mnn", "pose"]
    assert (repo / "pose" / "1" / "model.onnx").read_bytes() == (out / "pose.onnx").read_bytes()
    assert sorted(p.name for p in out.iterdir()) == before  # nothing exported or rewritten
    capsys.readouterr()
    for argv, words in ((["--triton-repo", str(repo)], "already exist"),
                        (["--triton-repo", str(tmp_path / "r2"), "--fp16"], "--fp16 would be ignored"),
                        ([], "pass --triton-repo")):
        assert run_cli(export_main, ["--out", str(out), "--triton-only", *argv]) == 1
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and words in err
    assert run_cli(export_main, ["--out", str(out), "--triton-repo", str(repo), "--triton-only", "--force"]) == 0
    (tmp_path / "empty").mkdir()
    assert run_cli(export_main, ["--out", str(tmp_path / "empty"), "--triton-repo", str(repo), "--triton-only"]) == 1
    assert "holds no exported ONNX artifact" in capsys.readouterr().err
