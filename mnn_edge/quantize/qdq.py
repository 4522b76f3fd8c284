"""FP32 ONNX + range table -> QDQ INT8 ONNX, in two flavours.

* ``Flavour.CPU`` (``*.int8.onnx``): unsigned 8-bit activations, signed per-channel weights in
  a 7-bit range (``reduce_range``, see :func:`_ort_options`), int32 biases: the form ONNX Runtime's
  x86 kernels are fast with (measured on this machine for the encoder at random weights: FP32
  94 ms, QDQ s8/s8 87 ms, QDQ u8/s8 38 ms).
* ``Flavour.TRT`` (``*.int8-trt.onnx``): TensorRT's explicit quantization: every Q/DQ is signed
  int8 with zero point 0 (symmetric activations and weights), weights per output channel
  (Conv axis 0, ConvTranspose axis 1, where its output channels are), float weights behind a
  Q->DQ pair and float biases (TensorRT quantizes weights itself at build time and has no int32
  DequantizeLinear). See :mod:`mnn_edge.runtime.tensorrt.compat` for the rules and their sources.

Both start from the same pre-processed graph (:func:`prepare_fp32`: ONNX Runtime's quantization
pre-processing, which folds the BatchNorms left after each ConvTranspose and constant-folds the
shape arithmetic — measured: without folding the INT8/FP32 latency ratio was 0.44-0.52, with it
0.37-0.40) and the same range table.

Kept in float by default (:func:`default_float_groups`), found from the graph's outputs, not from
node names: the pose heads (``fc_pose``/``fc_pose_proj`` and the scaling into degrees: one
8-bit step there is ~0.7 deg), the landmark decode (Reshape, heatmap Softmax, soft-argmax
MatMul: an 8-bit probability map over 65,536 pixels collapses into ties and moved landmarks by
127 px when quantized) and the visibility pooling (ReduceMean, Sigmoid).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
from dataclasses import dataclass
from pathlib import Path

import onnx

from mnn_edge.artifact import Flavour, ModelMetadata, Precision
from mnn_edge.artifact.onnx_io import get_metadata, save_onnx, set_metadata
from mnn_edge.errors import MnnEdgeError
from mnn_edge.fileio import atomic_path
from mnn_edge.quantize.calibration import CALIBRATED_OPS, RangeTable
from mnn_edge.quantize.rewrite import deconv_as_conv_and_pixel_shuffle

QUANT_OPS = frozenset({"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger",
                       "MatMulInteger", "DynamicQuantizeLinear", "QLinearAdd", "QLinearConcat"})


def is_quantized(model: onnx.ModelProto) -> bool:
    return any(n.op_type in QUANT_OPS for n in model.graph.node)


def check_not_quantized(model: onnx.ModelProto, where: str) -> None:
    meta = get_metadata(model)
    if is_quantized(model) or (meta is not None and meta.precision is not Precision.FP32):
        precision = meta.precision.value if meta is not None else "quantized"
        raise MnnEdgeError(f"{where} is already {precision}; quantize the FP32 export (pose.onnx / mnn.onnx)")


def prepare_fp32(src: str | Path, dst: str | Path) -> Path:
    """ONNX Runtime's quantization pre-processing: shape inference + basic graph optimisation.

    The optimisation folds every BatchNormalization into its (transposed) convolution and folds
    constant shape arithmetic. The mnn-edge metadata is kept.
    """
    from onnxruntime.quantization.shape_inference import quant_pre_process

    src, dst = Path(src), Path(dst)
    model = onnx.load(str(src))
    check_not_quantized(model, str(src))
    logging.getLogger("onnxruntime.quantization").setLevel(logging.ERROR)
    with atomic_path(dst) as tmp:
        # ONNX shape inference is enough for these static conv nets. Symbolic shape inference is
        # skipped: it fails on the full model's Resize and then leaves sym_shape_infer_temp.onnx
        # (+ a .data file) in the current directory.
        quant_pre_process(str(src), str(tmp), skip_symbolic_shape=True)
    return dst


# --------------------------------------------------------------------------- nodes kept in float


def _producers(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {o: n for n in model.graph.node for o in n.output}


def _walk_back(model: onnx.ModelProto, output: str, include_conv: bool) -> list[str]:
    """Nodes from a graph output back to the nearest Conv (data inputs only, not shape inputs)."""
    producers = _producers(model)
    names, todo, seen = [], [output], set()
    while todo:
        node = producers.get(todo.pop())
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        if node.op_type in ("Conv", "ConvTranspose"):
            if include_conv:
                names.append(node.name)
            continue
        names.append(node.name)
        # Reshape's second input is the target shape (integers), not data.
        todo.extend(node.input[:1] if node.op_type == "Reshape" else node.input)
    return names


FLOAT_GROUP_OUTPUTS = {
    # group name: (graph outputs it ends in, whether the head convolution stays float too)
    "pose_head": (("pose", "pose_proj"), True),
    "landmark_decode": (("landmarks", "heatmaps"), False),
    "visibility_pooling": (("visibility",), False),
}


def default_float_groups(model: onnx.ModelProto) -> dict[str, list[str]]:
    """Group name -> node names that stay in float (only the groups this model has)."""
    outputs = {o.name for o in model.graph.output}
    groups = {}
    for group, (names, include_conv) in FLOAT_GROUP_OUTPUTS.items():
        nodes = [n for out in names if out in outputs for n in _walk_back(model, out, include_conv)]
        if nodes:
            groups[group] = sorted(set(nodes))
    return groups


# --------------------------------------------------------------------------- quantization


@dataclass(frozen=True)
class QdqConfig:
    flavour: Flavour
    per_channel: bool = True
    reduce_range: bool | None = None  # 7-bit weights; None: the flavour's default (see _ort_options)
    extra_float_nodes: tuple[str, ...] = ()  # from --sensitivity / the user, beyond the defaults
    only_nodes: tuple[str, ...] = ()  # quantize just these nodes (sensitivity analysis); empty: all


def _ort_options(flavour: Flavour) -> dict:
    from onnxruntime.quantization import QuantType

    if flavour is Flavour.CPU:
        # reduce_range (7-bit weights): x86 CPUs without VNNI (this AMD EPYC: AVX2 only) multiply u8 x s8
        # pairs with vpmaddubsw, whose int16 sums saturate. Measured with early starter weights: pose MAE
        # against FP32 0.94 deg with full-range weights, 0.30 with reduce_range, same latency.
        return dict(activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, reduce_range=True,
                    extra_options={})
    return dict(activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, reduce_range=False, extra_options={
        # TensorRT placement: Q/DQ on the inputs of the quantized layers only, none between a Conv and its
        # ReLU (TensorRT fuses Conv+ReLU+Q itself; a Q/DQ pair on the Conv output would be an extra
        # requantization and an extra rounding).
        "OpTypesToExcludeOutputQuantization": ["Conv", "ConvTranspose", "Relu"],
        "ActivationSymmetric": True,  # zero point 0 on every activation
        "WeightSymmetric": True,
        "QuantizeBias": False,  # float biases: no int32 DequantizeLinear
        "AddQDQPairToWeight": True,  # float weights + Q->DQ: TensorRT quantizes them at build time
        "DedicatedQDQPair": True,  # one DQ per consumer, so each fuses into its own layer
    })


def quantize_qdq(prepared: str | Path, out: str | Path, table: RangeTable, cfg: QdqConfig) -> ModelMetadata:
    """Quantize the pre-processed FP32 model with ``table``; write ``out`` with INT8 metadata."""
    from onnxruntime.quantization.qdq_quantizer import QDQQuantizer
    from onnxruntime.quantization.quant_utils import load_model_with_shape_infer

    prepared, out = Path(prepared), Path(out)
    model = load_model_with_shape_infer(prepared)
    meta = get_metadata(model)
    if meta is None:
        raise MnnEdgeError(f"{prepared} has no mnn-edge metadata; export it with mnn-export")
    check_not_quantized(model, str(prepared))
    op_types = list(CALIBRATED_OPS)
    rewritten = 0
    if cfg.flavour is Flavour.CPU:
        # ONNX Runtime's CPU provider has no quantized ConvTranspose: the decoder's up-sampling
        # becomes 1x1 QLinearConv + an 8-bit DepthToSpace (TensorRT has INT8 deconvolution: the TRT
        # flavour keeps the ConvTranspose). Each new tensor holds the values of an original one.
        model, same_values = deconv_as_conv_and_pixel_shuffle(model)
        rewritten = len({v for v in same_values.values()})
        table = dataclasses.replace(table, ranges={**table.ranges, **{
            new: table.ranges[old] for new, old in same_values.items() if old in table.ranges}})
        op_types.append("DepthToSpace")
    missing = _missing_ranges(model, table)
    if missing:
        raise MnnEdgeError(f"the range table for '{table.model}' does not match {prepared.name}: "
                           f"{len(missing)} tensors have no range (e.g. {missing[0]}); calibrate again")
    groups = default_float_groups(model)
    float_nodes = sorted({n for g in groups.values() for n in g} | set(cfg.extra_float_nodes))
    opts = _ort_options(cfg.flavour)
    reduce_range = opts["reduce_range"] if cfg.reduce_range is None else cfg.reduce_range
    quantizer = QDQQuantizer(model, cfg.per_channel, reduce_range, opts["weight_type"], opts["activation_type"],
                             table.to_tensors_data(), list(cfg.only_nodes), float_nodes, op_types,
                             opts["extra_options"])
    with contextlib.redirect_stdout(io.StringIO()):
        quantizer.quantize_model()
    quantizer.model.topological_sort()  # as ONNX Runtime's own save does
    qmodel = quantizer.model.model
    qmeta = meta.with_(precision=Precision.INT8, extra=dict(meta.extra) | {
        "int8_flavour": cfg.flavour.value,
        "activations": "uint8 asymmetric" if cfg.flavour is Flavour.CPU else "int8 symmetric (zero point 0)",
        "weights": ("int8 symmetric " + ("per-channel" if cfg.per_channel else "per-tensor")
                    + (", 7-bit range (reduce_range)" if reduce_range else "")),
        "calibration_method": table.method.value,
        "calibration_images": table.num_images,
        "calibration_source": table.source,
        "float_groups": sorted(groups),
        "extra_float_nodes": sorted(cfg.extra_float_nodes),
        **({"deconv_rewritten": "ConvTranspose k2s2 -> Conv 1x1 + DepthToSpace (DCR)"} if rewritten else {}),
    })
    set_metadata(qmodel, qmeta)
    save_onnx(qmodel, out)
    return qmeta


def _missing_ranges(model: onnx.ModelProto, table: RangeTable) -> list[str]:
    """Float activations of calibrated op types that the table has no range for."""
    inits = {i.name for i in model.graph.initializer}
    values = [*model.graph.input, *model.graph.output, *model.graph.value_info]
    floats = {v.name for v in values if v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT}
    wanted = {t for n in model.graph.node if n.op_type in CALIBRATED_OPS for t in (n.input[0], *n.output)
              if t in floats and t not in inits}  # shape arithmetic (int64 Concat) has no range
    return sorted(wanted - set(table.ranges))
