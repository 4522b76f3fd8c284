"""FP32 ONNX -> ``*.fp16.onnx``: float16 weights and compute, float32 inputs and outputs.

For accuracy checks on the CPU with ONNX Runtime (which runs the ops it has no float16 kernel
for through inserted casts); the TensorRT FP16 engine is built from the FP32 ONNX by ``mnn-build``.

A small converter of our own rather than onnxconverter-common's ``convert_float_to_float16``:
with a node block list that one failed on the pre-processed pose graph ("The downstream node of
the second cast node should be graph output") and left blocked graph outputs in float16. Ours is
simple because the graphs are: every node computes in float16 except the float32 groups of
:func:`mnn_edge.quantize.qdq.default_float_groups` (pose heads and their scaling into degrees —
one float16 step at 90 deg is 0.06 deg —, heatmap softmax and soft-argmax, visibility pooling);
a Cast is inserted on every edge between the two, after the float32 input and before every
float32 output. Float initializers and Constant values are stored as float16 where only float16
nodes read them. Inputs whose type is fixed to float32 by the operator (Resize's roi and scales)
are left alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from mnn_edge.artifact import Precision
from mnn_edge.artifact.onnx_io import get_metadata, save_onnx, set_metadata
from mnn_edge.errors import MnnEdgeError
from mnn_edge.quantize.qdq import check_not_quantized, default_float_groups

# (op type, input index) that are not of the op's data type T: never converted, never cast.
FIXED_INPUTS = {("Resize", 1), ("Resize", 2), ("Resize", 3), ("Reshape", 1)}
# Ops that only read a tensor's shape: any float type will do, no cast needed.
SHAPE_ONLY = {"Shape", "Size"}


def _float_tensors(model: onnx.ModelProto) -> set[str]:
    """Names of every float32 tensor (inputs, initializers, constants, intermediates, outputs)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    values = [*inferred.graph.input, *inferred.graph.output, *inferred.graph.value_info]
    names = {v.name for v in values if v.type.tensor_type.elem_type == TensorProto.FLOAT}
    names |= {i.name for i in model.graph.initializer if i.data_type == TensorProto.FLOAT}
    for n in model.graph.node:
        if n.op_type == "Constant" and any(a.name == "value" and a.t.data_type == TensorProto.FLOAT
                                           for a in n.attribute):
            names.add(n.output[0])
    return names


def to_fp16(model: onnx.ModelProto, keep_float32: set[str]) -> onnx.ModelProto:
    """Float16 copy of ``model``; nodes named in ``keep_float32`` compute in float32."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    g = model.graph
    floats = _float_tensors(model)
    producer = {o: n for n in g.node for o in n.output}

    # 0. A graph output computed in float16 is renamed inside the graph; a final Cast restores the name.
    final_cast: dict[str, str] = {}  # inner float16 tensor -> graph output name
    for out in g.output:
        node = producer.get(out.name)
        if node is not None and node.name not in keep_float32 and out.name in floats:
            inner = f"{out.name}_fp16"
            for n in g.node:
                n.input[:] = [inner if t == out.name else t for t in n.input]
                n.output[:] = [inner if t == out.name else t for t in n.output]
            final_cast[inner] = out.name
            floats.add(inner)
    producer = {o: n for n in g.node for o in n.output}
    graph_inputs = {i.name for i in g.input}
    inits = {i.name: i for i in g.initializer}
    constants = {n.output[0]: n for n in g.node if n.op_type == "Constant"}

    def domain_of(tensor: str) -> str | None:
        """'16' or '32': the precision a float tensor is produced in (None: a weight/constant)."""
        if tensor in graph_inputs:
            return "32"
        node = producer.get(tensor)
        if node is None or node.op_type == "Constant":
            return None
        return "32" if node.name in keep_float32 else "16"

    # 1. Which precision each consumer wants for each float input.
    wants: dict[str, set[str]] = {t: {"32"} for t in final_cast}
    for n in g.node:
        if n.op_type == "Constant":
            continue
        for i, t in enumerate(n.input):
            if not t or t not in floats or (n.op_type, i) in FIXED_INPUTS or n.op_type in SHAPE_ONLY:
                continue
            wants.setdefault(t, set()).add("32" if n.name in keep_float32 else "16")

    # 2. Weights and constants read by float16 nodes get a float16 copy.
    renames: dict[tuple[str, str], str] = {}  # (tensor, precision) -> name to read
    for t, ws in wants.items():
        if domain_of(t) is None and "16" in ws:
            src = inits.get(t)
            value = numpy_helper.to_array(src if src is not None else constants[t].attribute[0].t)
            half = numpy_helper.from_array(value.astype(np.float16), f"{t}_fp16")
            g.initializer.append(half)
            renames[(t, "16")] = half.name

    # 3. Activations crossing between precisions get a Cast (one per tensor and direction).
    casts = []
    for t, ws in wants.items():
        d = domain_of(t)
        if d is None:
            continue
        for want in sorted(ws - {d}):
            name = final_cast.get(t, f"{t}_to_fp{want}") if want == "32" else f"{t}_to_fp{want}"
            to = TensorProto.FLOAT16 if want == "16" else TensorProto.FLOAT
            casts.append((producer.get(t), helper.make_node("Cast", [t], [name], name=f"Cast_{name}", to=to)))
            renames[(t, want)] = name

    # 4. Rewire consumers to the tensor of their precision.
    for n in g.node:
        if n.op_type == "Constant":
            continue
        want = "32" if n.name in keep_float32 else "16"
        for i, t in enumerate(n.input):
            if (t, want) in renames and (n.op_type, i) not in FIXED_INPUTS and n.op_type not in SHAPE_ONLY:
                n.input[i] = renames[(t, want)]

    # 5. Insert each Cast right after its producer (graph-input casts first): stays topologically sorted.
    after: dict[int, list[onnx.NodeProto]] = {}
    for p, c in casts:
        after.setdefault(-1 if p is None else id(p), []).append(c)
    nodes = list(after.get(-1, []))
    for n in g.node:
        nodes.append(n)
        nodes.extend(after.get(id(n), []))
    del g.node[:]
    g.node.extend(nodes)

    # 6. Drop weights and constants nothing reads any more; value_info is re-inferred.
    used = {t for n in g.node for t in n.input} | {o.name for o in g.output}
    keep = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    keep_nodes = [n for n in g.node if n.op_type != "Constant" or n.output[0] in used]
    del g.node[:]
    g.node.extend(keep_nodes)
    del g.value_info[:]
    return onnx.shape_inference.infer_shapes(model, strict_mode=True)


def convert_fp16(src: str | Path, dst: str | Path) -> Path:
    """Write the FP16 variant of ``src`` (an FP32 mnn-edge export, ideally pre-processed) to ``dst``."""
    src = Path(src)
    model = onnx.load(str(src))
    check_not_quantized(model, str(src))
    meta = get_metadata(model)
    if meta is None:
        raise MnnEdgeError(f"{src} has no mnn-edge metadata; export it with mnn-export")
    groups = default_float_groups(model)
    model16 = to_fp16(model, {n for g in groups.values() for n in g})
    set_metadata(model16, meta.with_(precision=Precision.FP16, extra=dict(meta.extra) | {
        "fp16": "float16 weights and compute, float32 inputs/outputs",
        "float32_groups": sorted(groups),
    }))
    save_onnx(model16, dst)
    return Path(dst)
