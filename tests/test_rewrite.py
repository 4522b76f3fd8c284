"""Export-time graph rewrites are exact: ConvTranspose(k2, s2) -> Conv 1x1 + DepthToSpace."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from mnn_edge.quantize.rewrite import deconv_as_conv_and_pixel_shuffle

# (C_in, C_out, H) of the MNN decoder's up-samplings (256 channels at 1..32 px, then 128 and 64)
SHAPES = [(256, 256, 1), (256, 256, 4), (256, 256, 32), (256, 128, 64), (128, 64, 128)]


def _graph(c_in: int, c_out: int, h: int, bias: bool, relu: bool, kernel: int = 2, seed: int = 0):
    rng = np.random.default_rng(seed)
    inits = [numpy_helper.from_array(rng.normal(size=(c_in, c_out, kernel, kernel)).astype(np.float32), "w")]
    inputs = ["x", "w"]
    if bias:
        inits.append(numpy_helper.from_array(rng.normal(size=c_out).astype(np.float32), "b"))
        inputs.append("b")
    nodes = [helper.make_node("ConvTranspose", inputs, ["up"], name="up", kernel_shape=[kernel, kernel],
                              strides=[2, 2])]
    out = "up"
    if relu:
        nodes.append(helper.make_node("Relu", ["up"], ["act"], name="act"))
        out = "act"
    side = (h - 1) * 2 + kernel
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, c_in, h, h])],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, [2, c_out, side, side])],
                              inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(model, x):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


@pytest.mark.parametrize("c_in, c_out, h", SHAPES)
@pytest.mark.parametrize("bias, relu", [(True, True), (False, False), (True, False)])
def test_deconv_becomes_conv_and_pixel_shuffle_exactly(c_in, c_out, h, bias, relu):
    model = _graph(c_in, c_out, h, bias, relu)
    x = np.random.default_rng(1).normal(size=(2, c_in, h, h)).astype(np.float32)
    want = _run(model, x)
    rewritten, same = deconv_as_conv_and_pixel_shuffle(onnx.ModelProto.FromString(model.SerializeToString()))
    onnx.checker.check_model(rewritten)
    ops = [n.op_type for n in rewritten.graph.node]
    assert ops == (["Conv", "Relu", "DepthToSpace"] if relu else ["Conv", "DepthToSpace"])
    assert [i.name for i in rewritten.graph.initializer if i.name in ("w", "b")] == []  # the old weights are gone
    got = _run(rewritten, x)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4 * np.abs(want).max())
    # every new tensor names the original tensor holding the same values (for its calibration range)
    assert set(same.values()) <= {"up", "act"} and len(same) == (2 if relu else 1)


def test_other_transposed_convolutions_are_left_alone():
    model = _graph(8, 4, 5, bias=True, relu=True, kernel=3)
    rewritten, same = deconv_as_conv_and_pixel_shuffle(model)
    assert same == {} and [n.op_type for n in rewritten.graph.node] == ["ConvTranspose", "Relu"]
