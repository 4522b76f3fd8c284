import subprocess
import sys

import numpy as np
import pytest

from mnn_edge.errors import MissingDependencyError, MnnEdgeError
from mnn_edge.runtime import Runner, backend_for, open_runner, tensorrt_available
from mnn_edge.runtime.inputs import random_input


def test_suffix_routing():
    assert backend_for("a/pose.onnx") == "onnxruntime"
    assert backend_for("x.int8.onnx") == "onnxruntime"
    assert backend_for("e.PLAN") == "tensorrt" and backend_for("e.engine") == "tensorrt"
    assert backend_for("m.pt") == "pytorch"
    with pytest.raises(MnnEdgeError, match="unknown artifact type '.tflite'"):
        backend_for("m.tflite")


@pytest.mark.skipif(tensorrt_available(), reason="TensorRT is installed here")
def test_plan_without_tensorrt_names_the_extra(tmp_path):
    plan = tmp_path / "pose.fp16.plan"
    plan.write_bytes(b"\0" * 16)
    with pytest.raises(MissingDependencyError, match=r"mnn-edge\[trt\]"):
        open_runner(plan)


def test_runtime_import_pulls_in_neither_torch_nor_tensorrt():
    # nor the serving stack: tritonclient only when a model URL is opened, mlserver only in mnn-serve
    code = ("import sys, mnn_edge.runtime, mnn_edge.runtime.onnxruntime_backend, mnn_edge.runtime.remote.runner, "
            "mnn_edge.preprocess, mnn_edge.serve.cli, mnn_edge.serve.server, mnn_edge.serve.artifacts; "
            "print(sorted(m for m in ('torch', 'tensorrt', 'pycuda', 'tritonclient', 'mlserver', 'grpc') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_metadata_comes_from_the_artifact(random_export):
    with open_runner(random_export / "pose.onnx") as runner:
        assert runner.metadata.input_size == 256 and runner.input_spec.shape == (None, 3, 256, 256)
        assert runner.describe() == "onnxruntime fp32 pose"


def test_input_checks_are_clear(random_export):
    with open_runner(random_export / "pose.onnx") as runner:
        with pytest.raises(ValueError, match=r"shape \(N, 3, 256, 256\)"):
            runner.infer(np.zeros((1, 256, 256, 3), np.float32))
        with pytest.raises(ValueError, match="must be float"):
            runner.infer(np.zeros((1, 3, 256, 256), np.uint8))
        assert runner.infer(random_input(2).astype(np.float64))["pose"].dtype == np.float32


@pytest.mark.parametrize("content", [b"", b"garbage bytes, not protobuf"])
def test_corrupt_onnx_is_one_clear_error(tmp_path, content):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(content)
    with pytest.raises(MnnEdgeError, match="not a loadable ONNX model"):
        open_runner(bad)


def test_onnx_without_metadata_is_rejected(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["image"], ["pose"])], "g",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 6])],
                              [helper.make_tensor_value_info("pose", TensorProto.FLOAT, [1, 6])])
    path = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(MnnEdgeError, match="no mnn-edge metadata"):
        open_runner(path)


def test_preprocess_uses_metadata_normalisation(random_export):
    from mnn_edge.preprocess import to_input

    with open_runner(random_export / "pose.onnx") as runner:
        meta = runner.metadata
    crop = np.full((256, 256, 3), 255, np.uint8)
    x = to_input(crop, meta)
    assert x.shape == (1, 3, 256, 256) and x.dtype == np.float32
    assert np.allclose(x[0, :, 0, 0], (1.0 - np.array(meta.mean)) / np.array(meta.std), atol=1e-5)
    with pytest.raises(ValueError):
        to_input(np.zeros((128, 128, 3), np.uint8), meta)


def test_the_backend_registry_names_real_runners():
    import importlib

    from mnn_edge.runtime import BACKENDS, SUFFIXES, backend_for

    for entry in BACKENDS:
        cls = getattr(importlib.import_module(entry.module), entry.runner)
        assert issubclass(cls, Runner) and cls.backend == entry.name
        assert all(backend_for(f"x{s}") == entry.name for s in entry.suffixes)
    assert set(SUFFIXES) == {".onnx", ".pt", ".plan", ".engine"}
