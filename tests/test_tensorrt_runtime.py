"""The TensorRT runner against the contract double: load-time checks, buffers by name, shapes,
contexts, CUDA graphs, clean release. The double computes with ONNX Runtime, so these tests show
our calls are consistent with the documented API — not that TensorRT computes the right numbers
(tests/test_tensorrt_gpu.py and bench/gpu_check do that on a GPU)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from trt_double.gpu import FakeGpu
from trt_double.install import installed
from trt_double.models import reference, write_tiny

from mnn_edge.artifact import Precision
from mnn_edge.artifact.sidecar import sidecar_path
from mnn_edge.errors import MissingDependencyError, MnnEdgeError
from mnn_edge.fileio import sha256_file
from mnn_edge.runtime import open_runner
from mnn_edge.runtime.tensorrt.build import build_engine
from mnn_edge.runtime.tensorrt.config import BuildConfig
from mnn_edge.runtime.tensorrt.runner import TensorRTRunner

X3 = np.random.default_rng(1).standard_normal((3, 3, 8, 8)).astype(np.float32)


@pytest.fixture
def built(tmp_path):
    """(source onnx, plan) for a 10.3 fp32 engine with batch profile 1..4."""
    src = write_tiny(tmp_path / "export")
    with installed("10.3"):
        plan = build_engine(src, BuildConfig(max_batch=4, opt_batch=2, out_dir=tmp_path / "engines",
                                             timing_cache=None, progress=False))
    return src, plan


@pytest.mark.parametrize("cuda", ["pycuda", "cuda-python"])
def test_matches_onnxruntime_and_switches_batch(built, cuda):
    src, plan = built
    with installed("10.3", cuda) as d:
        with open_runner(plan) as r:
            assert isinstance(r, TensorRTRunner) and r.describe() == "tensorrt fp32 pose"
            assert r.input_spec.shape == (None, 3, 8, 8) and (r.input_spec.min_batch, r.input_spec.max_batch) == (1, 4)
            for batch in (X3, X3[:1], X3):
                out = r.infer(batch)
                assert set(out) == {"pose"} and out["pose"].shape == (len(batch), 6)
                assert out["pose"].dtype == np.float32
                np.testing.assert_array_equal(out["pose"], reference(src, batch))
            assert r.metadata.input_size == 8 and r.metadata.mean == (0.485, 0.456, 0.406)
        assert d.gpu.leaks() == []  # every buffer, the stream and the context pushes released
        if cuda == "pycuda":
            assert ("ctx_retain", None) in d.gpu.calls and ("ctx_release", None) in d.gpu.calls


def test_buffers_are_sized_for_the_profile_max_and_copies_for_the_batch(built):
    _, plan = built
    with installed("10.3") as d, TensorRTRunner(plan) as r:
        sizes = sorted(len(b) for b in d.gpu.device_memory.values())
        assert sizes == [4 * 6 * 4, 4 * 3 * 8 * 8 * 4]  # (4, 6) and (4, 3, 8, 8) float32
        d.gpu.calls.clear()
        r.infer(X3[:1])
        assert [c for c in d.gpu.calls if c[0] in ("htod", "dtoh")] == [("htod", 3 * 8 * 8 * 4), ("dtoh", 6 * 4)]


def test_batch_outside_the_profile(built):
    _, plan = built
    with installed("10.3"), TensorRTRunner(plan) as r:
        with pytest.raises(MnnEdgeError, match=r"batch 5 is outside this artifact's range \[1, 4\].*--max-batch"):
            r.infer(np.zeros((5, 3, 8, 8), np.float32))


def test_cuda_graph_replays_and_recaptures_on_a_new_shape(built):
    src, plan = built
    with installed("10.3", "cuda-python") as d:
        with TensorRTRunner(plan, cuda_graph=True) as r:
            assert r.cuda_graph
            first = r.infer(X3)["pose"]
            captured = [c for c in d.gpu.calls if c[0] == "graph_captured"]
            assert captured == [("graph_captured", 3)]  # htod, execute_async_v3, dtoh
            second = r.infer(X3 * 2)["pose"]  # replay reads the new host data
            np.testing.assert_array_equal(second, reference(src, X3 * 2))
            np.testing.assert_array_equal(first, reference(src, X3))
            r.infer(X3[:2])
            assert len([c for c in d.gpu.calls if c[0] == "graph_captured"]) == 2
            assert len([c for c in d.gpu.calls if c[0] == "graph_launch"]) == 3
        assert d.gpu.leaks() == []


def test_another_tensorrt_version_says_how_to_rebuild(built):
    _, plan = built
    with installed("11.4"), pytest.raises(MnnEdgeError) as e:
        TensorRTRunner(plan)
    msg = str(e.value)
    assert "built for TensorRT 10.3.0 (this machine has 11.4.0.106)" in msg
    assert "rebuild it here: mnn-build" in msg and "--force" in msg


def test_another_gpu_says_how_to_rebuild(built):
    _, plan = built
    with installed("10.3", gpu=FakeGpu(name="NVIDIA A10", compute_capability=(8, 6))) as d:
        with pytest.raises(MnnEdgeError, match=r"GPU Orin \(nvgpu\) \(compute capability 8\.7\) \(this machine has "
                                               r"NVIDIA A10 \(compute capability 8\.6\)\).*mnn-build"):
            TensorRTRunner(plan)
        assert d.gpu.leaks() == []


def test_truncated_plan_never_reaches_tensorrt(built):
    _, plan = built
    plan.write_bytes(plan.read_bytes()[:100])
    with installed("10.3") as d, pytest.raises(MnnEdgeError, match=r"truncated or replaced.*mnn-build"):
        TensorRTRunner(plan)
    assert not any(c[0] == "execute_async_v3" for c in d.gpu.calls)


def test_corrupted_plan_of_the_same_size(built):
    _, plan = built
    data = bytearray(plan.read_bytes())
    data[-10] ^= 0xFF
    plan.write_bytes(bytes(data))
    with installed("10.3"), pytest.raises(MnnEdgeError, match="does not match the checksum"):
        TensorRTRunner(plan)


def test_deserialisation_returning_none_is_a_clear_error(built):
    _, plan = built
    plan.write_bytes(b"not a plan at all")
    sc = json.loads(sidecar_path(plan).read_text())
    sc.update(plan_bytes=plan.stat().st_size, plan_sha256=sha256_file(plan))
    sidecar_path(plan).write_text(json.dumps(sc))
    with installed("10.3") as d, pytest.raises(MnnEdgeError, match=r"could not deserialise .*rebuild it: mnn-build"):
        TensorRTRunner(plan)
    assert d.gpu.leaks() == []


def test_missing_sidecar_is_an_error(built):
    _, plan = built
    sidecar_path(plan).unlink()
    with installed("10.3"), pytest.raises(MnnEdgeError, match=r"has no sidecar pose\.fp32\.json"):
        TensorRTRunner(plan)


def test_bad_sidecar_is_an_error(built):
    _, plan = built
    sidecar_path(plan).write_text('{"format": "something-else"}')
    with installed("10.3"), pytest.raises(MnnEdgeError, match="is not an mnn-edge engine sidecar"):
        TensorRTRunner(plan)


def test_no_cuda_module_names_what_to_install(built):
    _, plan = built
    with installed("10.3", cuda="none"), pytest.raises(MissingDependencyError, match="pycuda is not installed"):
        TensorRTRunner(plan)


def test_close_is_idempotent_and_context_stack_is_clean_between_calls(built):
    _, plan = built
    with installed("10.3") as d:
        r = TensorRTRunner(plan)
        r.infer(X3)
        assert d.gpu.context_stack == []  # our context is pushed only around our own calls
        r.close()
        r.close()
        assert d.gpu.leaks() == []


@pytest.mark.parametrize("precision", [Precision.FP16, Precision.INT8])
def test_fp16_and_int8_engines_run(tmp_path, precision):
    src = write_tiny(tmp_path / "export", precision)
    with installed("11.4", "cuda-python"):
        plan = build_engine(src, BuildConfig(max_batch=2, out_dir=tmp_path / "e", timing_cache=None, progress=False))
        with TensorRTRunner(plan) as r:
            assert r.describe() == f"tensorrt {precision.value} pose"
            np.testing.assert_array_equal(r.infer(X3[:2])["pose"], reference(src, X3[:2]))


def test_staged_inference_times_copies_and_execution_apart(built):
    # mnn-bench --breakdown asks the runner for h2d / infer / d2h separately; the outputs must be
    # those of infer(), each copy must happen once, and a CUDA-graph runner offers no split.
    from mnn_edge.bench.breakdown import STAGED_NOTE, FramePipeline

    src, plan = built
    with installed("10.3") as d, TensorRTRunner(plan) as r:
        d.gpu.calls.clear()
        out, ms = r.infer_staged(X3[:2])
        np.testing.assert_array_equal(out["pose"], reference(src, X3[:2]))
        assert set(ms) == {"h2d", "infer", "d2h"} and all(v >= 0.0 for v in ms.values())
        copies = [c for c in d.gpu.calls if c[0] in ("htod", "dtoh")]
        assert copies == [("htod", 2 * 3 * 8 * 8 * 4), ("dtoh", 2 * 6 * 4)]
        with pytest.raises(MnnEdgeError, match="outside this artifact's range"):
            r.infer_staged(np.zeros((5, 3, 8, 8), np.float32))
        frames = [np.full((20, 30, 3), 40 * i, np.uint8) for i in range(3)]
        pipe = FramePipeline(r, frames, batch=2)
        for _ in range(3):
            pipe()
        report = pipe.breakdown()
        assert report.note == STAGED_NOTE
        assert all(report.stages[s] is not None for s in ("preprocess", "h2d", "infer", "d2h", "postprocess"))
    with installed("10.3", "cuda-python"), TensorRTRunner(plan, cuda_graph=True) as g:
        assert g.infer_staged is None
