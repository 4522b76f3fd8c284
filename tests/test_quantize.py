"""INT8 (both QDQ flavours) and FP16 artifacts: types, zero points, float groups, runs, bad input.

The quantization of both models runs once per session (``quantized`` fixture, through the CLI's
``--onnx`` path on the shared random-weight export); every test reads those files.
"""

from __future__ import annotations

import shutil

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper

from mnn_edge.artifact import Flavour, Precision
from mnn_edge.artifact.onnx_io import get_metadata
from mnn_edge.errors import MnnEdgeError
from mnn_edge.export.cli import main as export_main
from mnn_edge.quantize import calibration as cal
from mnn_edge.quantize.qdq import prepare_fp32
from mnn_edge.quantize.variants import Calibration, QuantizeConfig, quantize_exports
from mnn_edge.runtime.tensorrt.compat import check_model, check_trt_compat

MODELS = ("pose", "mnn")
VARIANTS = ("fp16", "int8", "int8-trt")
FLOAT_OPS = ("Softmax", "MatMul", "ReduceMean", "Sigmoid", "Flatten", "Mul")


@pytest.fixture(scope="module")
def quantized(random_export, tmp_path_factory):
    """All six variants + range tables of the random export, and what mnn-export printed."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("quantized")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), pytest.warns(UserWarning, match="only 4 calibration images"):
        assert export_main(["--onnx", str(random_export / "pose.onnx"), str(random_export / "mnn.onnx"),
                            "--out", str(out), "--int8", "--fp16", "--calib-random", "4", "--calib-method",
                            "minmax", "--ranges-dir", str(out / "calibration"), "--no-progress"]) == 0
    return out, buf.getvalue()


def _consts(model):
    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


def _nodes(model, op):
    return [n for n in model.graph.node if n.op_type == op]


def _producers(model):
    return {o: n for n in model.graph.node for o in n.output}


def test_cli_writes_six_artifacts_tables_and_reports(quantized):
    out, printed = quantized
    names = sorted(p.name for p in out.iterdir() if p.is_file())
    assert names == sorted(f"{m}.{v}.onnx" for m in MODELS for v in VARIANTS)
    assert sorted(p.name for p in (out / "calibration").iterdir()) == ["mnn.ranges.json", "pose.ranges.json"]
    for name in ("pose.int8-trt.onnx", "mnn.int8-trt.onnx", "pose.fp16.onnx", "mnn.fp16.onnx"):
        assert f"tensorrt-compat {name}: ok" in printed
    assert "tensorrt-compat pose.int8.onnx: CPU flavour" in printed
    drift = [line for line in printed.splitlines() if line.startswith("drift ")]
    assert len(drift) == 6 and all("batch 1, 4" in line for line in drift)


def test_metadata_keeps_fp32_fields_and_records_precision(quantized, random_export):
    out, _ = quantized
    for m in MODELS:
        fp32 = get_metadata(onnx.load(str(random_export / f"{m}.onnx")))
        for variant, precision in (("fp16", Precision.FP16), ("int8", Precision.INT8), ("int8-trt", Precision.INT8)):
            meta = get_metadata(onnx.load(str(out / f"{m}.{variant}.onnx"), load_external_data=False))
            assert meta.precision is precision
            assert meta.with_(precision=Precision.FP32, extra=fp32.extra) == fp32
            if precision is Precision.INT8:
                assert meta.extra["calibration_method"] == "minmax" and meta.extra["calibration_images"] == 4
                assert meta.extra["int8_flavour"] == ("trt" if variant == "int8-trt" else "cpu")


def test_cpu_flavour_u8_activations_s8_per_channel_weights(quantized):
    out, _ = quantized
    for m in MODELS:
        model = onnx.load(str(out / f"{m}.int8.onnx"))
        consts, producers = _consts(model), _producers(model)
        acts = _nodes(model, "QuantizeLinear")
        assert acts and all(consts[q.input[2]].dtype == np.uint8 for q in acts)
        for conv in _nodes(model, "Conv") + _nodes(model, "ConvTranspose"):
            w = producers.get(conv.input[1])
            if w is None:  # a float head convolution
                continue
            assert w.op_type == "DequantizeLinear" and consts[w.input[0]].dtype == np.int8
            assert np.all(consts[w.input[2]] == 0)
            axis = next(a.i for a in w.attribute if a.name == "axis")
            assert axis == (0 if conv.op_type == "Conv" else 1)
            assert consts[w.input[1]].size == conv_out_channels(consts[w.input[0]], conv.op_type)
            if len(conv.input) > 2:
                b = producers[conv.input[2]]
                assert b.op_type == "DequantizeLinear" and consts[b.input[0]].dtype == np.int32


def conv_out_channels(w: np.ndarray, op: str) -> int:
    return w.shape[0] if op == "Conv" else w.shape[1]


def test_trt_flavour_symmetric_s8_float_biases_and_compat(quantized):
    out, _ = quantized
    for m in MODELS:
        path = out / f"{m}.int8-trt.onnx"
        model = onnx.load(str(path))
        consts, producers = _consts(model), _producers(model)
        qdq = _nodes(model, "QuantizeLinear") + _nodes(model, "DequantizeLinear")
        assert qdq and all(consts[n.input[2]].dtype == np.int8 and np.all(consts[n.input[2]] == 0) for n in qdq)
        assert all(consts[n.input[0]].dtype != np.int32 for n in _nodes(model, "DequantizeLinear")
                   if n.input[0] in consts)
        per_channel = 0
        for conv in _nodes(model, "Conv") + _nodes(model, "ConvTranspose"):
            dq = producers.get(conv.input[1])
            if dq is not None:  # float weights -> Q -> DQ, per output channel
                q = producers[dq.input[0]]
                assert q.op_type == "QuantizeLinear" and consts[q.input[0]].dtype == np.float32
                axis = next(a.i for a in dq.attribute if a.name == "axis")
                assert axis == (0 if conv.op_type == "Conv" else 1)
                per_channel += 1
            if len(conv.input) > 2:
                assert conv.input[2] in consts and consts[conv.input[2]].dtype == np.float32
        assert per_channel >= 35
        # TensorRT placement: Q/DQ on layer inputs, never between a convolution and its ReLU
        for q in _nodes(model, "QuantizeLinear"):
            src = producers.get(q.input[0])
            assert src is None or src.op_type not in ("Conv", "ConvTranspose"), q.name
        assert check_trt_compat(path) == []


def test_sensitive_nodes_stay_float_in_both_flavours(quantized):
    out, _ = quantized
    for m in MODELS:
        for variant in ("int8", "int8-trt"):
            model = onnx.load(str(out / f"{m}.{variant}.onnx"))
            producers = _producers(model)
            consumers = {}
            for n in model.graph.node:
                for i in n.input:
                    consumers.setdefault(i, []).append(n)
            kept = [n for n in model.graph.node if n.op_type in FLOAT_OPS]
            expected = {"Flatten", "Mul"} | ({"Softmax", "MatMul", "ReduceMean", "Sigmoid"} if m == "mnn" else set())
            assert {n.op_type for n in kept} == expected
            for n in kept:
                # ReduceMean averages the (8-bit) fc_vis maps; every other kept node reads float tensors
                if n.op_type != "ReduceMean":
                    assert producers[n.input[0]].op_type != "DequantizeLinear", f"{n.name} in {variant}"
                assert all(c.op_type != "QuantizeLinear" for o in n.output for c in consumers.get(o, []))
            heads = [n for n in _nodes(model, "Conv") if "fc_pose" in n.name]
            assert heads and all(n.input[1] in _consts(model) for n in heads)  # float weights, no DQ


def test_every_artifact_runs_batch_1_and_4_close_to_fp32(quantized):
    """mnn-export ran every artifact beside its FP32 model for batch 1 and 4 (and failed on a wrong
    shape, dtype or non-finite value); here the drift it printed is held to (loose) tolerances."""
    _, printed = quantized
    loose = {"pose": 3.0, "pose_proj": 3.0, "landmarks": 2.0, "visibility": 0.02}  # random weights
    fp16 = {"pose": 0.05, "pose_proj": 0.05, "landmarks": 0.05, "visibility": 1e-3}
    seen = set()
    for line in printed.splitlines():
        if not line.startswith("drift "):
            continue
        name = line.split()[1]
        seen.add(name)
        drift = dict(part.split() for part in line.split("max abs): ")[1].split("; "))
        expected = ("pose",) if name.startswith("pose.") else ("pose", "pose_proj", "landmarks", "visibility")
        assert tuple(drift) == expected
        for output, value in drift.items():
            assert float(value) <= (fp16 if ".fp16." in name else loose)[output], line
    assert seen == {f"{m}.{v}.onnx" for m in MODELS for v in VARIANTS}


def test_drift_check_fails_loudly_on_a_broken_artifact(quantized):
    from mnn_edge.quantize.variants import drift_lines

    out, _ = quantized
    # an artifact that lacks outputs of its reference: pose.int8 checked against the full model
    with pytest.raises(MnnEdgeError, match=r"pose.int8.onnx \(batch 1\): output 'pose_proj' is None"):
        drift_lines(out / "mnn.int8.onnx", [out / "pose.int8.onnx"], batches=(1,))


def test_fp16_weights_half_io_float_and_float32_groups(quantized):
    out, _ = quantized
    model = onnx.shape_inference.infer_shapes(onnx.load(str(out / "mnn.fp16.onnx")))
    g = model.graph
    assert all(v.type.tensor_type.elem_type == TensorProto.FLOAT for v in [*g.input, *g.output])
    types = {v.name: v.type.tensor_type.elem_type for v in [*g.value_info, *g.input, *g.output]}
    types |= {i.name: i.data_type for i in g.initializer}
    big = [i for i in g.initializer if numpy_helper.to_array(i).size > 1000]
    # the soft-argmax grid (65,536 x 2) and the pose heads stay float32; every trunk weight is float16
    half = [i for i in big if i.data_type == TensorProto.FLOAT16]
    assert len(half) >= 60 and len(big) - len(half) <= 4
    for n in g.node:
        if n.op_type in ("Softmax", "MatMul", "ReduceMean", "Sigmoid"):
            assert types[n.input[0]] == TensorProto.FLOAT, n.name
        if n.op_type == "Conv" and "fc_pose" not in n.name:
            assert types[n.input[0]] == TensorProto.FLOAT16, n.name


def test_range_table_is_readable_and_reusable(quantized, random_export, tmp_path):
    out, _ = quantized
    table = cal.RangeTable.load(out / "calibration" / "pose.ranges.json")
    assert table.model == "pose" and table.method is cal.CalibMethod.MINMAX and table.num_images == 4
    assert table.checkpoint_sha256 == "" and "random noise 4" in table.source
    lo, hi = table.ranges["image"]
    assert lo < -2 and hi > 2  # standard-normal inputs
    assert all(lo <= hi for lo, hi in table.ranges.values()) and len(table.ranges) > 50
    # reuse without calibrating: the same table gives the same quantized weights and scales
    res = quantize_exports({"pose": random_export / "pose.onnx"}, tmp_path,
                           QuantizeConfig(ranges=(out / "calibration",), flavours=(Flavour.CPU,), progress=False))
    assert list(res.artifacts) == ["pose.int8.onnx"] and not (tmp_path / "calibration").exists()
    a, b = _consts(onnx.load(str(out / "pose.int8.onnx"))), _consts(onnx.load(str(res.artifacts["pose.int8.onnx"])))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_reused_table_from_other_checkpoint_is_refused(quantized, random_export, tmp_path):
    out, _ = quantized
    table = cal.RangeTable.load(out / "calibration" / "pose.ranges.json")
    other = cal.RangeTable(**{**table.__dict__, "checkpoint_sha256": "ab" * 32})
    other.save(tmp_path / "pose.ranges.json")
    with pytest.raises(MnnEdgeError, match="calibrated for checkpoint abababab.*calibrate again"):
        quantize_exports({"pose": random_export / "pose.onnx"}, tmp_path / "o",
                         QuantizeConfig(ranges=(tmp_path,), progress=False))
    with pytest.raises(MnnEdgeError, match="no range table for 'mnn'"):
        quantize_exports({"mnn": random_export / "mnn.onnx"}, tmp_path / "o",
                         QuantizeConfig(ranges=(tmp_path,), progress=False))
    (tmp_path / "bad.json").write_text("{\"ranges\": 3}")
    with pytest.raises(MnnEdgeError, match="not an mnn-edge range table"):
        cal.RangeTable.load(tmp_path / "bad.json")


def test_already_quantized_model_is_refused(quantized, tmp_path):
    out, _ = quantized
    for variant in ("int8", "fp16"):
        with pytest.raises(MnnEdgeError, match=f"already {variant[:4]}.*FP32"):
            quantize_exports({"pose": out / f"pose.{variant}.onnx"}, tmp_path,
                             QuantizeConfig(calibration=Calibration(random=2), progress=False))
        with pytest.raises(MnnEdgeError, match="already"):
            prepare_fp32(out / f"pose.{variant}.onnx", tmp_path / "p.onnx")
    assert not any(tmp_path.iterdir())


def test_existing_outputs_are_refused_without_force(quantized, random_export, tmp_path, capsys):
    from mnn_edge.cli_util import run_cli

    out, _ = quantized
    shutil.copy(out / "pose.fp16.onnx", tmp_path / "pose.fp16.onnx")
    before = (tmp_path / "pose.fp16.onnx").read_bytes()
    args = ["--onnx", str(random_export / "pose.onnx"), "--out", str(tmp_path), "--fp16"]
    assert run_cli(export_main, args) == 1
    assert "pose.fp16.onnx already exist; pass --force" in capsys.readouterr().err
    assert (tmp_path / "pose.fp16.onnx").read_bytes() == before


def test_calibration_sources_bad_input(tmp_path, capsys):
    from mnn_edge.artifact import ModelKind, ModelMetadata
    from mnn_edge.cli_util import run_cli

    meta = ModelMetadata(kind=ModelKind.POSE, num_landmarks=68)
    with pytest.raises(MnnEdgeError, match="calibration folder not found"):
        cal.inputs_from_dataset(tmp_path / "absent", "synthetic", meta)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "junk.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(MnnEdgeError):
        cal.inputs_from_dataset(tmp_path / "empty", "synthetic", meta)
    with pytest.raises(MnnEdgeError, match="no readable images"):
        cal.check_count(0, "x")
    with pytest.warns(UserWarning, match="only 15 calibration images"):
        cal.check_count(15, "x")
    assert run_cli(export_main, ["--random-init", "--out", str(tmp_path / "o"), "--int8"]) == 1
    assert "--int8 needs calibration images" in capsys.readouterr().err
    assert run_cli(export_main, ["--random-init", "--out", str(tmp_path / "o"), "--calib", str(tmp_path)]) == 1
    assert "--calib only applies with --int8" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_trt_compat_flags_cpu_flavour_and_unsupported_graphs(quantized):
    out, _ = quantized
    problems = check_trt_compat(out / "pose.int8.onnx")
    assert any("zero point is uint8" in p for p in problems)
    assert any("int32" in p and "keep biases in float" in p for p in problems)
    x = onnx.helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", 8])
    y = onnx.helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = onnx.helper.make_graph([onnx.helper.make_node("Hardmax", ["x"], ["y"], name="hm")], "g", [x], [y])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)])
    found = check_model(model)
    assert any("opset 18" in p for p in found)
    assert any("Hardmax is not in TensorRT's supported-operator list" in p for p in found)
    assert any("axis 2 is dynamic" in p for p in found)


def test_sensitivity_groups_report_and_greedy_fallback(quantized, random_export, tmp_path, monkeypatch):
    import json

    from mnn_edge.quantize import sensitivity as sens

    out, _ = quantized
    prepared = prepare_fp32(random_export / "pose.onnx", tmp_path / "pose.prepared.onnx")
    groups = sens.node_groups(onnx.load(str(prepared)))
    assert sorted(groups) == [f"encoder.stage_{s}" for s in range(1, 10)]
    assert all("fc_pose" not in n for nodes in groups.values() for n in nodes)  # float by default
    # two groups keep the test affordable; the mechanism is the same for twenty
    monkeypatch.setattr(sens, "node_groups", lambda model: {g: groups[g] for g in ("encoder.stage_9",
                                                                                  "encoder.stage_1")})
    table = cal.RangeTable.load(out / "calibration" / "pose.ranges.json")
    x = cal.random_inputs(2, seed=3)
    report = sens.analyse(prepared, table, x, target_mae=0.0, progress=False)
    assert report.full_int8.pose_mae > 0 and report.full_int8.nme is None
    assert set(report.groups) == {"encoder.stage_9", "encoder.stage_1"}
    first = max(report.groups, key=lambda g: report.groups[g].pose_mae)
    assert report.fallback[0] == first and [g for g, _ in report.steps] == report.fallback
    assert report.steps[-1][1].pose_mae < report.full_int8.pose_mae
    assert set(report.fallback_nodes) == {n for g in report.fallback for n in groups[g]}
    js, md = sens.write_reports([report], tmp_path)
    doc = json.loads(js.read_text())["pose"]
    assert doc["fallback"] == report.fallback and doc["steps"][0]["to_float"] == first
    assert "| encoder.stage_9 | 9 |" in md.read_text()


def test_drift_metrics_against_fp32():
    from mnn_edge.quantize.sensitivity import drift

    lm = np.zeros((2, 68, 2))
    lm[:, 36], lm[:, 45] = (100, 100), (150, 100)  # inter-ocular distance 50 px
    ref = {"pose": np.zeros((2, 6), np.float32), "landmarks": lm}
    got = {"pose": np.array([[1, -2, 3, 50, 50, 50]] * 2, np.float32), "landmarks": lm + (3, 4)}  # 5 px off
    d = drift(ref, got)
    assert d.pose_mae == pytest.approx(2.0) and d.nme == pytest.approx(0.1)


def test_quantization_flag_combinations_are_checked(tmp_path, capsys):
    from mnn_edge.cli_util import run_cli

    base = ["--random-init", "--out", str(tmp_path / "o")]
    for extra, message in ((["--sensitivity"], "--sensitivity only applies with --int8"),
                           (["--int8", "--calib-random", "2", "--max-mae-increase", "0.5"], "pass both"),
                           (["--int8", "--calib", str(tmp_path), "--calib-synthetic", "4"], "choose one")):
        assert run_cli(export_main, base + extra) == 1
        assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_calibration_inputs_use_the_inference_crop_and_normalisation(shared_data):
    from mnn_edge.artifact import ModelKind, ModelMetadata
    from mnn_edge.data.crop import crop_sample
    from mnn_edge.data.readers import load_image_rgb, read_dataset
    from mnn_edge.preprocess import to_input

    meta = ModelMetadata(kind=ModelKind.FULL, num_landmarks=68)
    root = shared_data / "samples" / "aflw2000"
    with pytest.warns(UserWarning, match="only 4 calibration images"):
        x = cal.inputs_from_dataset(root, "aflw2000", meta, progress=False)
    assert x.shape == (4, 3, 256, 256) and x.dtype == np.float32
    first = read_dataset(root, "aflw2000")[0]
    expected = to_input(crop_sample(first, load_image_rgb(first.image_path), size=256).image, meta)
    np.testing.assert_array_equal(x[0], expected[0])


def test_range_check_ignores_integer_shape_arithmetic():
    """--keep-heatmaps exports reshape with an int64 Concat: it needs no range (regression)."""
    from onnx import helper

    from mnn_edge.quantize.qdq import _missing_ranges

    w = numpy_helper.from_array(np.ones((2, 1, 1, 1), np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv"),
             helper.make_node("Shape", ["y"], ["s"], name="shape"),
             helper.make_node("Concat", ["s", "s"], ["s2"], axis=0, name="cat")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
                              [helper.make_tensor_value_info("s2", TensorProto.INT64, [8])], initializer=[w])
    model = onnx.shape_inference.infer_shapes(helper.make_model(graph))
    table = cal.RangeTable(model="m", method=cal.CalibMethod.MINMAX, num_images=1, checkpoint_sha256="",
                           ranges={"x": (0.0, 1.0)})
    assert _missing_ranges(model, table) == ["y"]
    table = cal.RangeTable(**{**table.__dict__, "ranges": {"x": (0.0, 1.0), "y": (0.0, 2.0)}})
    assert _missing_ranges(model, table) == []


def test_a_failure_on_the_second_model_leaves_no_files(quantized, random_export, tmp_path, monkeypatch):
    from mnn_edge.quantize import variants as pipeline

    out, _ = quantized
    real = pipeline.quantize_qdq

    def failing(prepared, path, table, cfg):
        if path.name.startswith("mnn."):
            raise MnnEdgeError("simulated failure")
        return real(prepared, path, table, cfg)

    monkeypatch.setattr(pipeline, "quantize_qdq", failing)
    with pytest.raises(MnnEdgeError, match="simulated"):
        quantize_exports({"pose": random_export / "pose.onnx", "mnn": random_export / "mnn.onnx"}, tmp_path,
                         QuantizeConfig(ranges=(out / "calibration",), flavours=(Flavour.CPU,), progress=False))
    assert not any(p.name.endswith(".onnx") for p in tmp_path.iterdir())


def test_sensitivity_reuses_range_tables_only_for_their_checkpoint(quantized, random_export, tmp_path):
    """The sensitivity step goes through the pipeline's one calibrate-or-reuse (issue 13): a table
    from another checkpoint is refused there too, not silently used."""
    import json

    from mnn_edge.quantize.sensitivity import run_sensitivity_for_export
    from mnn_edge.quantize.variants import Calibration, QuantizeConfig

    out, _ = quantized
    table = json.loads((out / "calibration" / "pose.ranges.json").read_text())
    table["checkpoint_sha256"] = "0" * 64
    (tmp_path / "ranges").mkdir()
    (tmp_path / "ranges" / "pose.ranges.json").write_text(json.dumps(table))
    qcfg = QuantizeConfig(ranges=(tmp_path / "ranges",), calibration=Calibration(random=2), progress=False)
    with pytest.raises(MnnEdgeError, match="calibrated for checkpoint 000000000000"):
        run_sensitivity_for_export({"pose": random_export / "pose.onnx"}, tmp_path, qcfg, None, images=1)


def test_cpu_flavour_upsamples_with_quantized_convs_trt_keeps_its_deconvolutions(quantized):
    """ONNX Runtime's CPU provider has no quantized ConvTranspose: the CPU flavour's decoder
    up-samples with 1x1 convolutions (quantized) and 8-bit DepthToSpace; TensorRT has INT8
    deconvolution, so its flavour keeps the graph as exported."""
    out, _ = quantized
    cpu = onnx.load(str(out / "mnn.int8.onnx"))
    trt = onnx.load(str(out / "mnn.int8-trt.onnx"))
    assert not _nodes(cpu, "ConvTranspose") and len(_nodes(cpu, "DepthToSpace")) == 7
    assert len(_nodes(trt, "ConvTranspose")) == 7 and not _nodes(trt, "DepthToSpace")
    producers = _producers(cpu)
    for d2s in _nodes(cpu, "DepthToSpace"):  # fed by a DequantizeLinear: it moves 8-bit data
        assert producers[d2s.input[0]].op_type == "DequantizeLinear"
    assert get_metadata(cpu).extra["deconv_rewritten"].startswith("ConvTranspose k2s2")
