"""mnn_edge.artifact: the file-name grammar both ways, the typed INT8 flavour, landmark schemes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from mnn_edge.artifact import (
    ArtifactName,
    Flavour,
    ModelKind,
    ModelMetadata,
    Precision,
    export_onnx_names,
    kind_of,
    onnx_sibling,
    scheme_for,
)
from mnn_edge.artifact.onnx_io import get_metadata, load_onnx, set_metadata
from mnn_edge.errors import MnnEdgeError

ALL = [ArtifactName(k, Precision.FP32) for k in ModelKind] + [ArtifactName(k, Precision.FP16) for k in ModelKind] + [
    ArtifactName(k, Precision.INT8, f) for k in ModelKind for f in Flavour]


@pytest.mark.parametrize("name", ALL, ids=lambda n: n.onnx())
def test_onnx_names_parse_back_to_what_made_them(name):
    assert ArtifactName.parse(name.onnx()) == name
    assert ArtifactName.parse(Path("export") / name.onnx()) == name
    assert ArtifactName.parse(name.stem + "@tensorrt") == name


def test_the_grammar_spelled_out():
    assert export_onnx_names() == ("pose.onnx", "pose.fp16.onnx", "pose.int8.onnx", "pose.int8-trt.onnx",
                                   "mnn.onnx", "mnn.fp16.onnx", "mnn.int8.onnx", "mnn.int8-trt.onnx")
    assert ArtifactName(ModelKind.FULL, Precision.INT8, Flavour.TRT).plan() == "mnn.int8.plan"
    assert ArtifactName.parse("mnn.fp16.plan") == ArtifactName(ModelKind.FULL, Precision.FP16)
    assert ArtifactName.parse("pose.int8.plan").precision is Precision.INT8
    assert ArtifactName.parse("my_model.onnx") is None
    assert ArtifactName.parse("pose.weird.onnx") is None
    assert kind_of("mnn") is ModelKind.FULL
    with pytest.raises(ValueError, match="known: pose, mnn"):
        kind_of("face")
    with pytest.raises(ValueError, match="INT8"):
        ArtifactName(ModelKind.POSE, Precision.FP16, Flavour.CPU)


def test_siblings_keep_the_folder_and_the_model():
    assert onnx_sibling(Path("e/pose.onnx"), Precision.FP16) == Path("e/pose.fp16.onnx")
    assert onnx_sibling(Path("e/mnn.fp16.onnx"), Precision.INT8, Flavour.TRT) == Path("e/mnn.int8-trt.onnx")
    assert onnx_sibling(Path("e/mnn.int8.onnx"), Precision.FP32) == Path("e/mnn.onnx")


def test_flavour_is_read_from_metadata_not_the_name():
    meta = ModelMetadata(kind=ModelKind.POSE, num_landmarks=68)
    assert meta.flavour is None
    int8 = meta.with_(precision=Precision.INT8, extra={"int8_flavour": "trt"})
    assert int8.flavour is Flavour.TRT
    assert ModelMetadata.from_json(int8.to_json()).flavour is Flavour.TRT
    assert meta.with_(precision=Precision.INT8).flavour is Flavour.CPU  # files from before the field


def test_onnx_metadata_round_trip_keeps_other_entries(tmp_path):
    model = onnx.helper.make_model(onnx.helper.make_graph([], "g", [], []))
    model.metadata_props.add(key="other", value="kept")
    meta = ModelMetadata(kind=ModelKind.FULL, num_landmarks=68, outputs=("pose", "landmarks"))
    set_metadata(model, meta)
    set_metadata(model, meta.with_(precision=Precision.FP16))
    assert get_metadata(model) == meta.with_(precision=Precision.FP16)
    assert [p.key for p in model.metadata_props] == ["other", "mnn_edge"]
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00not a protobuf" * 10)
    with pytest.raises(MnnEdgeError, match="is not a loadable ONNX model"):
        load_onnx(bad)


def test_landmark_schemes():
    ibug = scheme_for(68)
    assert ibug.name == "ibug68" and ibug.outer_eye_corners == (36, 45)
    mean_face = np.loadtxt(Path(__file__).parents[1] / "mnn_edge/assets/mean_face_68.txt")
    order = np.asarray(ibug.flip_order)
    # mirroring the (symmetric) mean face maps it onto itself
    assert np.abs(mean_face[order] * [-1, 1, 1] - mean_face).max() < 0.1 * np.ptp(mean_face[:, 0])
    assert scheme_for(98).outer_eye_corners == (60, 72) and scheme_for(98).flip_order is None
    assert scheme_for(7).name == "custom7"


def test_the_artifact_package_does_not_import_torch():
    code = "import sys, mnn_edge.artifact, mnn_edge.artifact.onnx_io; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
