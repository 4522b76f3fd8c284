"""The contract cases against REAL TensorRT on a real GPU (marked ``gpu``).

Skipped, with the reason, unless ``tensorrt`` imports and pycuda or cuda-python sees a GPU; when
they do, every test builds and runs real engines and asserts numbers against ONNX Runtime CPU.
Run them on a Jetson / GPU workstation with:  python -m pytest -m gpu tests/test_tensorrt_gpu.py
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from trt_double.models import reference, write_tiny

from mnn_edge.artifact import Precision
from mnn_edge.artifact.sidecar import sidecar_path
from mnn_edge.errors import MnnEdgeError
from mnn_edge.runtime.tensorrt.build import build_engine
from mnn_edge.runtime.tensorrt.config import BuildConfig


def _why_not() -> str:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return "TensorRT is not installed (pip install 'mnn-edge[trt]' on a machine with an NVIDIA GPU)"
    try:
        from mnn_edge.runtime.tensorrt.cuda_memory import open_cuda

        open_cuda().close()
    except MnnEdgeError as e:
        return f"no usable GPU: {e}"
    return ""


REASON = _why_not()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(bool(REASON), reason=REASON or "ok")]
X = np.random.default_rng(3).standard_normal((4, 3, 8, 8)).astype(np.float32)
TOL = {Precision.FP32: 1e-3, Precision.FP16: 3e-2, Precision.INT8: 0.25}


def _cfg(tmp_path, **kw):
    return BuildConfig(out_dir=tmp_path / "engines", timing_cache=tmp_path / "timing.cache", progress=False, **kw)


@pytest.mark.parametrize("precision", list(Precision))
def test_tiny_engine_matches_onnxruntime(tmp_path, precision):
    import tensorrt as trt

    from mnn_edge.runtime.tensorrt.capabilities import Capabilities
    from mnn_edge.runtime.tensorrt.runner import TensorRTRunner

    graph = precision if (precision is not Precision.FP16 or Capabilities.of(trt).strongly_typed_only) else \
        Precision.FP32
    src = write_tiny(tmp_path / "export", graph)
    plan = build_engine(src, _cfg(tmp_path, precision=precision, max_batch=4, opt_batch=2))
    ref = reference(write_tiny(tmp_path / "ref", Precision.FP32), X)
    with TensorRTRunner(plan) as r:
        for batch in (X, X[:1]):
            out = r.infer(batch)["pose"]
            np.testing.assert_allclose(out, ref[:len(batch)], atol=TOL[precision] * (1 + np.abs(ref).max()))


def test_real_models_fp32_parity(tmp_path, random_export):
    from mnn_edge.runtime import open_runner
    from mnn_edge.runtime.inputs import random_input

    x = random_input(2, seed=7)
    for name in ("pose", "mnn"):
        plan = build_engine(random_export / f"{name}.onnx", _cfg(tmp_path, max_batch=2))
        with open_runner(random_export / f"{name}.onnx") as ort_r, open_runner(plan) as trt_r:
            ref, got = ort_r.infer(x), trt_r.infer(x)
        assert set(got) == set(ref)
        np.testing.assert_allclose(got["pose"][:, :3], ref["pose"][:, :3], atol=0.05)  # degrees
        if "landmarks" in ref:
            assert np.abs(got["landmarks"] - ref["landmarks"]).max() < 0.5  # crop pixels


def test_cuda_graph_gives_the_same_numbers(tmp_path):
    from mnn_edge.runtime.tensorrt.runner import TensorRTRunner

    plan = build_engine(write_tiny(tmp_path / "export"), _cfg(tmp_path, max_batch=4))
    with TensorRTRunner(plan) as plain, TensorRTRunner(plan, cuda_graph=True) as graph:
        if not graph.cuda_graph:
            pytest.skip("CUDA graphs need cuda-python")
        for _ in range(3):
            np.testing.assert_array_equal(graph.infer(X)["pose"], plain.infer(X)["pose"])


def test_staged_inference_matches_and_times_each_stage(tmp_path):
    from mnn_edge.runtime.tensorrt.runner import TensorRTRunner

    plan = build_engine(write_tiny(tmp_path / "export"), _cfg(tmp_path, max_batch=4))
    with TensorRTRunner(plan) as r:
        out, ms = r.infer_staged(X)
        np.testing.assert_array_equal(out["pose"], r.infer(X)["pose"])
        assert set(ms) == {"h2d", "infer", "d2h"} and all(0.0 < v < 1000.0 for v in ms.values())


def test_load_time_checks_with_real_tensorrt(tmp_path):
    from mnn_edge.runtime.tensorrt.runner import TensorRTRunner

    plan = build_engine(write_tiny(tmp_path / "export"), _cfg(tmp_path, max_batch=2))
    with TensorRTRunner(plan) as r, pytest.raises(MnnEdgeError, match="outside this artifact's range"):
        r.infer(np.zeros((3, 3, 8, 8), np.float32))
    sc = json.loads(sidecar_path(plan).read_text())
    sidecar_path(plan).write_text(json.dumps({**sc, "tensorrt_version": "0.0.1"}))
    with pytest.raises(MnnEdgeError, match=r"built for TensorRT 0\.0\.1.*mnn-build"):
        TensorRTRunner(plan)
    sidecar_path(plan).write_text(json.dumps(sc))
    plan.write_bytes(plan.read_bytes()[:1000])
    with pytest.raises(MnnEdgeError, match="truncated"):
        TensorRTRunner(plan)


def test_parser_errors_from_real_tensorrt(tmp_path):
    with pytest.raises(MnnEdgeError, match="ONNX parser rejected.*MnnEdgeNoSuchOp"):
        build_engine(write_tiny(tmp_path / "export", bad_op=True), _cfg(tmp_path))
