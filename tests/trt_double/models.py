"""Tiny hand-made ONNX graphs with mnn-edge metadata (fp32, fp16, Q/DQ int8), for the double."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from mnn_edge.artifact import ModelKind, ModelMetadata, Precision
from mnn_edge.artifact.onnx_io import set_metadata

SIZE = 8


def _weights(seed: int = 0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((4, 3, 3, 3)).astype(np.float32) * 0.3,
            rng.standard_normal((6, 4)).astype(np.float32), rng.standard_normal(6).astype(np.float32))


def tiny_model(precision: Precision = Precision.FP32, bad_op: bool = False) -> onnx.ModelProto:
    """image (N,3,8,8) -> Conv -> Relu -> GlobalAveragePool -> Flatten -> Gemm -> pose (N,6)."""
    w, fc, b = _weights()
    nodes, inits = [], []
    x = "image"
    wdt = np.float16 if precision is Precision.FP16 else np.float32
    if precision is Precision.FP16:
        nodes.append(helper.make_node("Cast", ["image"], ["x16"], to=TensorProto.FLOAT16))
        x = "x16"
    if precision is Precision.INT8:
        inits += [numpy_helper.from_array(np.array(0.05, np.float32), "s_in"),
                  numpy_helper.from_array(np.array(0, np.int8), "z_in"),
                  numpy_helper.from_array(np.full(4, 0.01, np.float32), "s_w"),
                  numpy_helper.from_array(np.zeros(4, np.int8), "z_w")]
        nodes += [helper.make_node("QuantizeLinear", ["image", "s_in", "z_in"], ["xq"]),
                  helper.make_node("DequantizeLinear", ["xq", "s_in", "z_in"], ["xdq"]),
                  helper.make_node("QuantizeLinear", ["w", "s_w", "z_w"], ["wq"], axis=0),
                  helper.make_node("DequantizeLinear", ["wq", "s_w", "z_w"], ["wdq"], axis=0)]
        x, wname = "xdq", "wdq"
    else:
        wname = "w"
    inits += [numpy_helper.from_array(w.astype(wdt), "w"), numpy_helper.from_array(fc.astype(wdt), "fc"),
              numpy_helper.from_array(b.astype(wdt), "b")]
    nodes += [helper.make_node("Conv", [x, wname], ["c"], pads=[1, 1, 1, 1]),
              helper.make_node("Relu", ["c"], ["r"]),
              helper.make_node("GlobalAveragePool", ["r"], ["g"]),
              helper.make_node("Flatten", ["g"], ["f"]),
              helper.make_node("Gemm", ["f", "fc", "b"], ["p16" if precision is Precision.FP16 else "pose"],
                               transB=1)]
    if precision is Precision.FP16:
        nodes.append(helper.make_node("Cast", ["p16"], ["pose"], to=TensorProto.FLOAT))
    if bad_op:
        nodes.insert(0, helper.make_node("MnnEdgeNoSuchOp", ["image"], ["nms"], name="my_nms"))
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("image", TensorProto.FLOAT,
                                                                            ["batch", 3, SIZE, SIZE])],
                              [helper.make_tensor_value_info("pose", TensorProto.FLOAT, ["batch", 6])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = ModelMetadata(kind=ModelKind.POSE, num_landmarks=68, input_size=SIZE, outputs=("pose",),
                         precision=precision)
    set_metadata(model, meta)
    return model


def write_tiny(folder: Path, precision: Precision = Precision.FP32, **kw) -> Path:
    """Write like the export folder does: pose.onnx / pose.fp16.onnx / pose.int8-trt.onnx."""
    name = {Precision.FP32: "pose.onnx", Precision.FP16: "pose.fp16.onnx", Precision.INT8: "pose.int8-trt.onnx"}
    path = Path(folder) / name[precision]
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(tiny_model(precision, **kw), str(path))
    return path


def reference(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
