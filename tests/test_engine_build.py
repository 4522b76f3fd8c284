"""mnn-build against the contract double (tests/trt_double): the calls, flags, profile, files and
errors our build code produces for TensorRT 8.6 / 10.3 / 11.4. Not evidence that TensorRT builds
these engines — tests/test_tensorrt_gpu.py and bench/gpu_check do that on a GPU."""

from __future__ import annotations

import base64
import json

import pytest
from trt_double.fake_tensorrt import MAGIC
from trt_double.gpu import FakeGpu
from trt_double.install import installed
from trt_double.models import write_tiny

from mnn_edge.artifact import Precision
from mnn_edge.artifact.sidecar import read_sidecar
from mnn_edge.cli_util import run_cli
from mnn_edge.engine_build.cli import main as _main
from mnn_edge.errors import MissingDependencyError, MnnEdgeError
from mnn_edge.fileio import sha256_file
from mnn_edge.runtime.tensorrt.build import build_engine, build_engines_for_export
from mnn_edge.runtime.tensorrt.config import BuildConfig, Typing


def build_main(argv: list[str]) -> int:
    return run_cli(_main, argv)  # as the console script runs it: error line + exit 1


def plan_header(plan) -> dict:
    data = plan.read_bytes()
    assert data.startswith(MAGIC)
    h = json.loads(data[len(MAGIC):])
    h.pop("onnx")
    return h


def cfg(tmp_path, **kw) -> BuildConfig:
    kw.setdefault("out_dir", tmp_path / "engines")
    kw.setdefault("timing_cache", tmp_path / "engines" / "timing.cache")
    kw.setdefault("progress", False)
    return BuildConfig(**kw)


# (release, precision, source graph) -> (strongly typed?, builder flags)
CASES = [  # TF32 is on by default in TensorRT; fp32 engines clear it (exact FP32 reference)
    ("8.6", Precision.FP32, Precision.FP32, False, []),
    ("8.6", Precision.FP16, Precision.FP32, False, ["FP16", "TF32"]),
    ("8.6", Precision.INT8, Precision.INT8, False, ["INT8", "TF32"]),
    ("10.3", Precision.FP32, Precision.FP32, True, []),
    ("10.3", Precision.FP16, Precision.FP32, False, ["FP16", "TF32"]),  # fp32 graph + flag
    ("10.3", Precision.FP16, Precision.FP16, True, ["TF32"]),  # fp16 graph, strongly typed
    ("10.3", Precision.INT8, Precision.INT8, True, ["TF32"]),  # Q/DQ, strongly typed, no precision flags
    ("11.4", Precision.FP32, Precision.FP32, True, []),
    ("11.4", Precision.FP16, Precision.FP16, True, ["TF32"]),
    ("11.4", Precision.INT8, Precision.INT8, True, ["TF32"]),
]


@pytest.mark.parametrize("version,precision,graph,strong,flags", CASES)
def test_typing_and_flags_per_release(tmp_path, version, precision, graph, strong, flags):
    src = write_tiny(tmp_path / "export", graph)
    with installed(version):
        plan = build_engine(src, cfg(tmp_path, precision=precision, min_batch=1, opt_batch=2, max_batch=4))
    h = plan_header(plan)
    assert plan.name == f"pose.{precision.value}.plan"
    assert h["strongly_typed"] is strong and h["flags"] == flags
    assert h["profile"] == [[1, 3, 8, 8], [2, 3, 8, 8], [4, 3, 8, 8]]
    assert h["workspace"] == 1024 << 20
    sc = read_sidecar(plan)
    assert sc.typing == ("strong" if strong else "weak") and sc.build["builder_flags"] == [f for f in flags
                                                                                          if f != "TF32"]


def test_sidecar_records_what_loading_needs(tmp_path):
    src = write_tiny(tmp_path / "export", Precision.FP16)
    gpu = FakeGpu(name="NVIDIA A10", compute_capability=(8, 6))
    with installed("10.3", gpu=gpu):
        plan = build_engine(src, cfg(tmp_path, max_batch=8, opt_batch=4))
    sc = read_sidecar(plan)
    assert sc.tensorrt_version == "10.3.0" and sc.gpu.name == "NVIDIA A10" and sc.gpu.compute_capability == "8.6"
    assert sc.precision is Precision.FP16  # taken from the ONNX when --precision is not given
    assert sc.profile == {"image": {"min": [1, 3, 8, 8], "opt": [4, 3, 8, 8], "max": [8, 3, 8, 8]}}
    assert sc.min_batch == 1 and sc.max_batch == 8
    assert sc.metadata.mean == (0.485, 0.456, 0.406) and sc.metadata.input_size == 8
    assert sc.metadata.precision is Precision.FP16 and sc.metadata.outputs == ("pose",)
    assert sc.source_onnx_sha256 == sha256_file(src) and sc.plan_sha256 == sha256_file(plan)
    assert sc.plan_bytes == plan.stat().st_size
    assert [t.name for t in sc.inputs] == ["image"] and sc.inputs[0].shape == (-1, 3, 8, 8)
    assert sc.outputs[0].dtype == "float32"
    assert sc.rebuild_command.startswith("mnn-build ") and "--max-batch 8" in sc.rebuild_command


def test_trt11_needs_the_fp16_graph_for_fp16(tmp_path):
    src = write_tiny(tmp_path / "export", Precision.FP32)
    with installed("11.4"), pytest.raises(MnnEdgeError, match=r"strongly typed|graph only.*pose\.fp16\.onnx"):
        build_engine(src, cfg(tmp_path, precision=Precision.FP16))


def test_int8_only_from_qdq(tmp_path):
    src = write_tiny(tmp_path / "export", Precision.FP32)
    with installed("10.3"), pytest.raises(MnnEdgeError, match=r"no Q/DQ.*no implicit calibration.*int8-trt\.onnx"):
        build_engine(src, cfg(tmp_path, precision=Precision.INT8))


def test_strong_typing_request_on_86_is_refused(tmp_path):
    src = write_tiny(tmp_path / "export", Precision.FP16)
    with installed("8.6"), pytest.raises(MnnEdgeError, match="no strongly typed networks"):
        build_engine(src, cfg(tmp_path, typing=Typing.STRONG))


def test_parser_errors_are_reported_not_a_traceback(tmp_path, capsys):
    src = write_tiny(tmp_path / "export", bad_op=True)
    with installed("10.3"):
        rc = build_main([str(src), "--out", str(tmp_path / "e"), "--no-progress", "--no-timing-cache"])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.startswith("error: TensorRT's ONNX parser rejected")
    assert "No importer registered for op: MnnEdgeNoSuchOp" in err and "'my_nms'" in err
    assert "Traceback" not in err and not (tmp_path / "e" / "pose.fp32.plan").exists()


def test_refuses_to_overwrite_and_leaves_no_partial_files(tmp_path):
    src = write_tiny(tmp_path / "export")
    c = cfg(tmp_path)
    with installed("10.3"):
        plan = build_engine(src, c)
        with pytest.raises(MnnEdgeError, match="already exist; pass --force"):
            build_engine(src, c)
        build_engine(src, c.with_(force=True))
    assert sorted(p.name for p in plan.parent.iterdir()) == ["pose.fp32.json", "pose.fp32.plan", "timing.cache"]


def test_timing_cache_is_written_and_reused(tmp_path):
    src = write_tiny(tmp_path / "export")
    c = cfg(tmp_path, force=True)
    with installed("10.3"):
        build_engine(src, c)
        first = c.timing_cache.read_bytes()
        assert first.startswith(b"FAKECACHE") and b"image" in first
        build_engine(src, c)
    assert c.timing_cache.read_bytes() == first


def test_progress_bar_where_tensorrt_has_a_monitor(tmp_path, capsys):
    src = write_tiny(tmp_path / "export")
    with installed("10.3"):
        build_engine(src, cfg(tmp_path, progress=True))
    assert "Building engine" in capsys.readouterr().err
    with installed("8.6"):  # no IProgressMonitor: builds without a bar
        build_engine(src, cfg(tmp_path, progress=True, force=True))
    assert "Building engine" not in capsys.readouterr().err


def test_dla_build_uses_flags_and_gpu_fallback(tmp_path):
    src = write_tiny(tmp_path / "export", Precision.INT8)
    with installed("10.3", gpu=FakeGpu(dla_cores=2)):
        plan = build_engine(src, cfg(tmp_path, dla_core=1))
    h = plan_header(plan)
    assert h["dla_core"] == 1 and h["strongly_typed"] is False
    assert h["flags"] == ["FP16", "GPU_FALLBACK", "INT8", "TF32"]
    assert read_sidecar(plan).dla_core == 1


def test_dla_on_a_device_without_dla_is_clear(tmp_path):
    src = write_tiny(tmp_path / "export", Precision.FP16)
    with installed("10.3"), pytest.raises(MnnEdgeError, match=r"DLA core 0 requested but this device has 0"):
        build_engine(src, cfg(tmp_path, dla_core=0))
    with installed("10.3"), pytest.raises(MnnEdgeError, match="DLA runs FP16 and INT8 only"):
        build_engine(write_tiny(tmp_path / "export"), cfg(tmp_path, dla_core=0, precision=Precision.FP32))


def test_no_tensorrt_is_one_line_naming_what_to_install(tmp_path, capsys):
    src = write_tiny(tmp_path / "export")
    with installed(tensorrt=False):
        with pytest.raises(MissingDependencyError, match=r"TensorRT is not installed: pip install 'mnn-edge\[trt\]'"):
            build_engine(src, cfg(tmp_path))
        assert build_main([str(src), "--out", str(tmp_path / "e")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "JetPack" in err[0]


def test_no_cuda_module_is_one_line_too(tmp_path):
    src = write_tiny(tmp_path / "export")
    with installed("10.3", cuda="none"), pytest.raises(MissingDependencyError, match="pycuda is not installed"):
        build_engine(src, cfg(tmp_path))


def test_build_engines_for_export_picks_each_precisions_artifact(tmp_path):
    exp = tmp_path / "export"
    for p in Precision:
        write_tiny(exp, p)
    with installed("11.4"):
        plans = build_engines_for_export(exp, ["fp32", "fp16", "int8"], cfg(tmp_path))
    assert [p.name for p in plans] == ["pose.fp32.plan", "pose.fp16.plan", "pose.int8.plan"]
    assert [read_sidecar(p).source_onnx.rsplit("/", 1)[-1] for p in plans] == [
        "pose.onnx", "pose.fp16.onnx", "pose.int8-trt.onnx"]


def test_build_engines_for_export_missing_int8_artifact(tmp_path):
    exp = tmp_path / "export"
    write_tiny(exp)
    with installed("10.3"), pytest.raises(MnnEdgeError, match=r"pose\.int8-trt\.onnx not found"):
        build_engines_for_export(exp, [Precision.INT8], cfg(tmp_path))


def test_cli_with_recipe_and_overrides(tmp_path, capsys):
    src = write_tiny(tmp_path / "export", Precision.INT8)
    recipe = tmp_path / "r.toml"
    recipe.write_text('name = "test-target"\n[build]\nprecision = "int8"\nmin_batch = 1\nopt_batch = 2\n'
                      'max_batch = 4\nworkspace_mib = 256\n')
    with installed("10.3"):
        rc = build_main([str(src), "--recipe", str(recipe), "--max-batch", "8", "--out", str(tmp_path / "e"),
                         "--no-progress", "--no-timing-cache"])
    assert rc == 0 and "wrote" in capsys.readouterr().out
    sc = read_sidecar(tmp_path / "e" / "pose.int8.plan")
    assert sc.max_batch == 8 and sc.build["workspace_mib"] == 256 and sc.build["recipe"] == "test-target"
    assert sc.build["timing_cache"] is None


def test_real_export_builds_through_the_double(tmp_path, random_export):
    """The real MNN graphs (both models) parse and build with the ops/shapes the double knows."""
    with installed("10.3"):
        plans = build_engines_for_export(random_export, [Precision.FP32], cfg(tmp_path, max_batch=2))
    assert [p.name for p in plans] == ["pose.fp32.plan", "mnn.fp32.plan"]
    full = read_sidecar(plans[1])
    assert [t.name for t in full.outputs] == list(full.metadata.outputs)
    assert base64.b64decode(json.loads(plans[1].read_bytes()[len(MAGIC):])["onnx"]) == \
        (random_export / "mnn.onnx").read_bytes()


def test_tf32_can_be_allowed_in_fp32_engines(tmp_path):
    src = write_tiny(tmp_path / "export")
    with installed("10.3"):
        plan = build_engine(src, cfg(tmp_path, tf32=True))
    assert plan_header(plan)["flags"] == ["TF32"] and read_sidecar(plan).build["tf32"] is True
