"""What the source graph is and how TensorRT must type it, decided before TensorRT is touched.

Precision policy (:func:`choose_typing`): INT8 only from an explicitly quantized (Q/DQ) graph —
there is no implicit-calibrator path, since calibrators are deprecated in 10.1 and gone in 11.x.
TensorRT's "Explicit Quantization" page: "Use explicit quantization with Strong Typing.
Precision-control build flags are not required and should not be specified." FP16 comes from an
FP16 graph when strongly typed (the only way on 11.x), or from an FP32 graph + ``BuilderFlag.FP16``
on 8.6/10.x. The graph's precision is read from its ops and initialisers (what TensorRT will see);
the metadata must agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mnn_edge.artifact import Flavour, ModelMetadata, Precision, onnx_sibling
from mnn_edge.artifact.onnx_io import get_metadata, load_onnx
from mnn_edge.errors import MnnEdgeError
from mnn_edge.runtime.tensorrt.capabilities import Capabilities
from mnn_edge.runtime.tensorrt.config import BuildConfig, Typing

QDQ_OPS = {"QuantizeLinear", "DequantizeLinear"}


@dataclass(frozen=True)
class OnnxFacts:
    """What the build needs to know about the source graph before TensorRT sees it."""

    path: Path
    metadata: ModelMetadata
    graph_precision: Precision  # fp32 / fp16 (float16 input or initialisers) / int8 (has Q/DQ)
    input_name: str
    input_shape: tuple[int | None, ...]


def inspect_onnx(path: Path) -> OnnxFacts:
    import onnx

    model = load_onnx(path)
    meta = get_metadata(model)
    if meta is None:
        raise MnnEdgeError(f"{path} has no mnn-edge metadata; export it with mnn-export")
    graph = model.graph
    ops = {n.op_type for n in graph.node}
    init_names = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in init_names]
    if len(inputs) != 1:
        raise MnnEdgeError(f"{path} has {len(inputs)} inputs; mnn-edge models have exactly one")
    inp = inputs[0]
    dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in inp.type.tensor_type.shape.dim)
    if ops & QDQ_OPS:
        graph_precision = Precision.INT8
    elif inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT16 or any(
            i.data_type == onnx.TensorProto.FLOAT16 for i in graph.initializer):
        graph_precision = Precision.FP16
    else:
        graph_precision = Precision.FP32
    return OnnxFacts(path, meta, graph_precision, inp.name, dims)


def sibling_for(path: Path, precision: Precision) -> Path:
    """The source TensorRT wants for ``precision``: pose.onnx -> pose.fp16.onnx / pose.int8-trt.onnx."""
    return onnx_sibling(path, precision, Flavour.TRT)


@dataclass(frozen=True)
class TypingPlan:
    typing: Typing  # STRONG or WEAK
    flags: tuple[str, ...]  # BuilderFlag member names to set


def choose_typing(caps: Capabilities, cfg: BuildConfig, precision: Precision, facts: OnnxFacts) -> TypingPlan:
    """Decide strongly vs weakly typed and the precision flags; raise a clear error for a bad combination."""
    g = facts.graph_precision
    dla = cfg.dla_core is not None
    name = facts.path
    if precision is Precision.INT8 and g is not Precision.INT8:
        raise MnnEdgeError(f"{name} has no Q/DQ nodes: INT8 engines are built only from an explicitly quantized "
                           f"graph (no implicit calibration); use {sibling_for(name, Precision.INT8).name} "
                           f"written by the quantization step")
    if precision is Precision.FP32 and g is not Precision.FP32:
        raise MnnEdgeError(f"{name} is a {g.value} graph; build fp32 engines from "
                           f"{sibling_for(name, Precision.FP32).name}")
    if precision is Precision.FP16 and g is Precision.INT8:
        raise MnnEdgeError(f"{name} is an INT8 (Q/DQ) graph; build fp16 engines from "
                           f"{sibling_for(name, Precision.FP16).name} or {sibling_for(name, Precision.FP32).name}")
    if dla and precision is Precision.FP32:
        raise MnnEdgeError("DLA runs FP16 and INT8 only: use --precision fp16 or int8 with --dla-core")

    if caps.strongly_typed_only:
        if cfg.typing is Typing.WEAK:
            raise MnnEdgeError(f"TensorRT {caps.version} is strongly typed only: precision flags do not exist; "
                               f"drop --typing weak")
        if precision is Precision.FP16 and g is not Precision.FP16:
            raise MnnEdgeError(f"TensorRT {caps.version} takes precision from the graph only: build fp16 from "
                               f"{sibling_for(name, Precision.FP16).name}, not the fp32 {name.name}")
        return TypingPlan(Typing.STRONG, ())

    flag_for = {Precision.FP16: ("FP16",), Precision.INT8: ("INT8",), Precision.FP32: ()}
    # 10.x DLA needs a precision flag (weak typing); so does everything on 8.6 (no STRONGLY_TYPED).
    want_weak = (cfg.typing is Typing.WEAK or dla or not caps.strongly_typed
                 or (precision is Precision.FP16 and g is Precision.FP32))
    if cfg.typing is Typing.STRONG:
        if not caps.strongly_typed:
            raise MnnEdgeError(f"TensorRT {caps.version} has no strongly typed networks; drop --typing strong")
        if precision is Precision.FP16 and g is Precision.FP32:
            raise MnnEdgeError(f"a strongly typed fp16 engine needs the fp16 graph "
                               f"{sibling_for(name, Precision.FP16).name}, not {name.name}")
        if dla:
            raise MnnEdgeError(f"DLA builds on TensorRT {caps.version} use precision flags; drop --typing strong")
        return TypingPlan(Typing.STRONG, ())
    if want_weak:
        flags = flag_for[precision]
        if dla and precision is Precision.INT8:
            flags = ("INT8", "FP16")  # DLA layers without INT8 support run in FP16 rather than fall back
        for f in flags:
            if not (caps.fp16_flag if f == "FP16" else caps.int8_flag):
                raise MnnEdgeError(f"TensorRT {caps.version} has no BuilderFlag.{f}")
        return TypingPlan(Typing.WEAK, flags)
    return TypingPlan(Typing.STRONG, ())


def network_flags(trt, caps: Capabilities, plan: TypingPlan) -> int:
    flags = 0
    if caps.explicit_batch_flag:  # required by 8.x, "ignored" by 10.x (docstring), absent in 11.x
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    if plan.typing is Typing.STRONG and caps.strongly_typed and not caps.strongly_typed_only:
        # 11.x: "Deprecated in TensorRT 11.0. Strongly typed mode is always enabled" -> not set there.
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    return flags
