"""Exact graph rewrites applied to the pre-processed FP32 graph before it is quantized.

**ConvTranspose(kernel 2, stride 2, no padding) -> Conv 1x1 + DepthToSpace.** With kernel = stride
every output pixel reads exactly one input pixel, y[c, 2h+i, 2w+j] = sum_k x[k, h, w] W[k, c, i, j]
+ b[c], which is a 1x1 convolution to 4*C_out channels, channel (i*2 + j)*C_out + c, followed by
DepthToSpace(blocksize 2, mode DCR) — the sub-pixel convolution identity (Shi et al., 2016). ONNX
Runtime's CPU provider has no quantized ConvTranspose, so in the INT8 graph every decoder
up-sampling ran in float between a DequantizeLinear and a QuantizeLinear; rewritten, each becomes
a QLinearConv. A ReLU right after the ConvTranspose (BatchNorm already folded into it) moves in
front of the DepthToSpace (an element-wise op commutes with a pixel shuffle), so it fuses into the
convolution and the DepthToSpace only moves 8-bit data.

The outputs are the same up to float rounding; :func:`mnn_edge.quantize.variants` checks drift as
for every INT8 artifact, and ``tests/test_rewrite.py`` checks each rewrite on random weights.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper


def _attr(node: onnx.NodeProto, name: str, default):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _is_pixel_deconv(node: onnx.NodeProto, inits: dict[str, onnx.TensorProto]) -> bool:
    if node.op_type != "ConvTranspose" or len(node.input) < 2 or node.input[1] not in inits:
        return False
    w = inits[node.input[1]]
    return (list(_attr(node, "kernel_shape", list(w.dims[2:]))) == [2, 2] and list(w.dims[2:]) == [2, 2]
            and list(_attr(node, "strides", [1, 1])) == [2, 2] and not any(_attr(node, "pads", [0, 0, 0, 0]))
            and _attr(node, "group", 1) == 1 and list(_attr(node, "dilations", [1, 1])) == [1, 1]
            and not any(_attr(node, "output_padding", [0, 0])) and not _attr(node, "output_shape", [])
            and _attr(node, "auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET"))


def deconv_as_conv_and_pixel_shuffle(model: onnx.ModelProto) -> tuple[onnx.ModelProto, dict[str, str]]:
    """Rewrite every kernel-2/stride-2 ConvTranspose; returns the model and, for each new
    intermediate tensor, the original tensor whose values (rearranged) it holds — its calibration
    range is that tensor's."""
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    graph_outputs = {o.name for o in graph.output}
    same_values: dict[str, str] = {}
    new_nodes: list[onnx.NodeProto] = []
    skip: set[int] = set()
    for node in graph.node:
        if id(node) in skip:
            continue
        if not _is_pixel_deconv(node, inits):
            new_nodes.append(node)
            continue
        w = numpy_helper.to_array(inits[node.input[1]])  # (C_in, C_out, 2, 2)
        c_in, c_out = w.shape[:2]
        w1 = w.transpose(2, 3, 1, 0).reshape(4 * c_out, c_in, 1, 1)  # row (i*2 + j)*C_out + c
        base = node.name or node.output[0]
        w_name = f"{base}_as_conv_w"
        graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(w1).astype(w.dtype), w_name))
        conv_inputs = [node.input[0], w_name]
        if len(node.input) > 2 and node.input[2]:
            b = numpy_helper.to_array(inits[node.input[2]])
            b_name = f"{base}_as_conv_b"
            graph.initializer.append(numpy_helper.from_array(np.tile(b, 4).astype(b.dtype), b_name))
            conv_inputs.append(b_name)
        out = node.output[0]
        users = consumers.get(out, [])
        relu = users[0] if len(users) == 1 and users[0].op_type == "Relu" and out not in graph_outputs else None
        conv_out = f"{base}_as_conv"
        new_nodes.append(helper.make_node("Conv", conv_inputs, [conv_out], name=f"{base}_as_conv",
                                          kernel_shape=[1, 1], strides=[1, 1], pads=[0, 0, 0, 0]))
        same_values[conv_out] = out
        shuffle_in, final = conv_out, out
        if relu is not None:  # ReLU first: it fuses into the quantized Conv, the shuffle moves 8-bit data
            shuffle_in, final = f"{base}_as_conv_relu", relu.output[0]
            new_nodes.append(helper.make_node("Relu", [conv_out], [shuffle_in], name=relu.name or f"{base}_relu"))
            skip.add(id(relu))
            same_values[shuffle_in] = final
        new_nodes.append(helper.make_node("DepthToSpace", [shuffle_in], [final], name=f"{base}_pixel_shuffle",
                                          blocksize=2, mode="DCR"))
    if not same_values:
        return model, {}
    del graph.node[:]
    graph.node.extend(new_nodes)
    used = {i for n in graph.node for i in n.input}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    del graph.value_info[:]
    return onnx.shape_inference.infer_shapes(model), same_values
