"""Will TensorRT parse and build this ONNX file? A static check on the ONNX side.

Run by ``mnn-export`` on every artifact it writes and by the tests (CI has no GPU). Checked
against, and to be re-read when the targets change:

* onnx-tensorrt ``docs/operators.md`` for TensorRT 8.5/8.6 ("supports operators up to Opset 17"),
  the support matrix below; JetPack 6's TensorRT 10.x parses the same operators (its list is a
  superset). Its restrictions we hit: ``QuantizeLinear`` "y_zero_point must be 0",
  ``DequantizeLinear`` input INT8 and "x_zero_point must be zero", Conv/ConvTranspose weights
  must be initializers, Resize modes ``nearest``/``linear`` with the listed coordinate modes.
* TensorRT Developer Guide, "Working with Quantized Types" / "Explicit Quantization": symmetric
  quantization only (zero point 0, signed INT8), per-tensor scales for activations, per-channel
  scales only for weights and only on the output-channel axis (K: axis 0 of a Conv kernel KCRS,
  axis 1 of a ConvTranspose kernel CKRS); weights either float behind a Q->DQ pair (TensorRT
  quantizes them at build time) or INT8 constants behind a DQ.
* TensorRT C++ API, ``IQuantizeLayer``/``IDequantizeLayer``: scales strictly positive, a scalar
  (per-tensor) or a 1-D tensor whose size matches the quantization axis (per-channel); the zero
  point a build-time constant of zeros with the input's quantized type.
* Shapes: only the batch axis may be dynamic (the optimisation profile covers it); every other
  input dimension must be static so TensorRT can choose tactics.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

MAX_OPSET = 17

# ONNX operators marked "Y" in onnx-tensorrt's support matrix for TensorRT 8.5 (opset <= 17).
TRT_SUPPORTED_OPS = frozenset("""
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization Cast Ceil Celu
Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum DepthToSpace DequantizeLinear Div
Dropout Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather GatherElements GatherND Gemm
GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual GridSample GRU HardSwish HardSigmoid
Identity If ImageScaler InstanceNormalization IsNaN LeakyRelu Less LessOrEqual Log LogSoftmax Loop LRN
LSTM LpNormalization LpPool MatMul Max MaxPool Mean MeanVarianceNormalization Min Mod Mul Neg
NonMaxSuppression NonZero Not OneHot Or Pad ParametricSoftplus Pow PRelu QuantizeLinear RandomNormal
RandomNormalLike RandomUniform RandomUniformLike Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum
ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize
ReverseSequence RNN RoiAlign Round ScaledTanh Scan Scatter ScatterElements ScatterND Selu Shape Shrink
Sigmoid Sign Sin Sinh Size Slice Softmax Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan
Tanh ThresholdedRelu Tile TopK Transpose Trilu Unsqueeze Upsample Where Xor
""".split())

RESIZE_MODES = {b"nearest", b"linear"}
RESIZE_COORDINATE_MODES = {b"half_pixel", b"pytorch_half_pixel", b"tf_half_pixel_for_nn", b"asymmetric",
                           b"align_corners"}
RESIZE_NEAREST_MODES = {b"floor", b"ceil", b"round_prefer_floor", b"round_prefer_ceil"}
WEIGHT_AXIS = {"Conv": 0, "ConvTranspose": 1}  # the output-channel axis of each kernel layout


def _attr(node: onnx.NodeProto, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _constants(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    values = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "Constant" and n.output and _attr(n, "value") is not None:
            values[n.output[0]] = numpy_helper.to_array(_attr(n, "value"))
    return values


def _opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def _check_ops(model: onnx.ModelProto) -> list[str]:
    problems = []
    for n in model.graph.node:
        if n.domain not in ("", "ai.onnx"):
            problems.append(f"node {n.name} ({n.domain}.{n.op_type}): custom-domain ops need a TensorRT plugin")
        elif n.op_type not in TRT_SUPPORTED_OPS:
            problems.append(f"node {n.name}: {n.op_type} is not in TensorRT's supported-operator list")
    return problems


def _check_shapes(model: onnx.ModelProto) -> list[str]:
    problems = []
    inits = {i.name for i in model.graph.initializer}
    for value in [*model.graph.input, *model.graph.output]:
        if value.name in inits:
            continue
        dims = value.type.tensor_type.shape.dim
        for axis, d in enumerate(dims):
            if axis > 0 and not d.HasField("dim_value") and value in model.graph.input:
                problems.append(f"input '{value.name}' axis {axis} is dynamic ('{d.dim_param}'); only the batch "
                                "axis may be")
        if value in model.graph.input and value.type.tensor_type.elem_type not in (TensorProto.FLOAT,
                                                                                     TensorProto.FLOAT16):
            problems.append(f"input '{value.name}' is not float32/float16")
    return problems


def _check_resize(node: onnx.NodeProto) -> list[str]:
    problems = []
    mode = _attr(node, "mode", b"nearest")
    if mode not in RESIZE_MODES:
        problems.append(f"node {node.name}: Resize mode {mode.decode()} unsupported")
    coord = _attr(node, "coordinate_transformation_mode", b"half_pixel")
    if coord not in RESIZE_COORDINATE_MODES:
        problems.append(f"node {node.name}: Resize coordinate mode {coord.decode()} unsupported")
    if mode == b"nearest" and _attr(node, "nearest_mode", b"round_prefer_floor") not in RESIZE_NEAREST_MODES:
        problems.append(f"node {node.name}: Resize nearest mode unsupported")
    return problems


def _check_weights(model: onnx.ModelProto, consts: dict[str, np.ndarray]) -> list[str]:
    """Conv/ConvTranspose weights must be initializers (directly or behind Q/DQ of initializers)."""
    producers = {o: n for n in model.graph.node for o in n.output}
    problems = []
    for n in model.graph.node:
        if n.op_type not in WEIGHT_AXIS:
            continue
        w = n.input[1]
        while w not in consts and w in producers and producers[w].op_type in ("QuantizeLinear", "DequantizeLinear"):
            w = producers[w].input[0]
        if w not in consts:
            problems.append(f"node {n.name}: {n.op_type} weights are not an initializer")
    return problems


def _check_qdq(model: onnx.ModelProto, consts: dict[str, np.ndarray]) -> list[str]:
    """Explicit-quantization rules for every QuantizeLinear / DequantizeLinear."""
    problems = []
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in model.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    producers = {o: n for n in model.graph.node for o in n.output}
    for n in model.graph.node:
        if n.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        where = f"{n.op_type} {n.name}"
        if len(n.input) < 3 or n.input[2] not in consts:
            problems.append(f"{where}: no constant zero point (its type, INT8, must be explicit)")
            continue
        scale, zp = consts.get(n.input[1]), consts[n.input[2]]
        if scale is None:
            problems.append(f"{where}: scale is not a constant")
            continue
        if zp.dtype != np.int8:
            problems.append(f"{where}: zero point is {zp.dtype}, TensorRT needs int8")
        if np.any(zp != 0):
            problems.append(f"{where}: zero point is not 0 (TensorRT quantization is symmetric)")
        if np.any(scale <= 0) or not np.all(np.isfinite(scale)):
            problems.append(f"{where}: scale must be finite and strictly positive")
        if n.op_type == "DequantizeLinear" and n.input[0] in consts and consts[n.input[0]].dtype != np.int8:
            problems.append(f"{where}: dequantizes a {consts[n.input[0]].dtype} constant (e.g. an int32 "
                            "bias); TensorRT dequantizes INT8 only, keep biases in float")
        if scale.ndim > 1:
            problems.append(f"{where}: scale has rank {scale.ndim}; use per-tensor or per-channel (1-D)")
        if scale.size > 1:
            problems.extend(_check_per_channel(n, where, scale, consts, consumers, producers))
    return problems


def _weight_of(dq: onnx.NodeProto, consts, producers) -> bool:
    """Is this Q/DQ on a weight (a constant, or the Q of a constant)?"""
    src = dq.input[0]
    if src in consts:
        return True
    p = producers.get(src)
    return p is not None and p.op_type == "QuantizeLinear" and p.input[0] in consts


def _check_per_channel(n, where, scale, consts, consumers, producers) -> list[str]:
    if not _weight_of(n, consts, producers):
        return [f"{where}: per-channel scale on an activation; TensorRT wants per-tensor activations"]
    axis = _attr(n, "axis", 1)
    # follow Q -> DQ down to the layer that uses the weight
    users = consumers.get(n.output[0], [])
    if n.op_type == "QuantizeLinear":
        users = [u for dq in users for u in consumers.get(dq.output[0], [])]
    problems = []
    feeds = {n.output[0]} | {dq.output[0] for dq in consumers.get(n.output[0], [])}
    for u in users:
        want = WEIGHT_AXIS.get(u.op_type)
        if want is not None and len(u.input) > 2 and u.input[2] in feeds:
            want = 0  # a (1-D) bias
        if want is None:
            problems.append(f"{where}: per-channel weights feed {u.op_type} {u.name}")
        elif axis != want:
            problems.append(f"{where}: per-channel axis {axis} for {u.op_type} {u.name}; TensorRT needs the "
                            f"output-channel axis {want}")
    return problems


def check_model(model: onnx.ModelProto) -> list[str]:
    """Problems TensorRT would have with ``model`` (empty: none found)."""
    problems = []
    opset = _opset(model)
    if opset > MAX_OPSET:
        problems.append(f"opset {opset} > {MAX_OPSET}: TensorRT 8.6 parses ONNX up to opset {MAX_OPSET}")
    consts = _constants(model)
    problems += _check_ops(model)
    problems += _check_shapes(model)
    problems += _check_weights(model, consts)
    for n in model.graph.node:
        if n.op_type == "Resize":
            problems += _check_resize(n)
    problems += _check_qdq(model, consts)
    return problems


def check_trt_compat(onnx_path: str | Path) -> list[str]:
    """Problems TensorRT would have with the ONNX file at ``onnx_path`` (empty list: none found)."""
    return check_model(onnx.load(str(onnx_path)))


def format_report(path: str | Path, problems: list[str], limit: int = 8) -> str:
    name = Path(path).name
    if not problems:
        return f"tensorrt-compat {name}: ok"
    shown = "; ".join(problems[:limit]) + (f"; ... {len(problems) - limit} more" if len(problems) > limit else "")
    return f"tensorrt-compat {name}: {len(problems)} problem(s): {shown}"
