"""``mnn-export --engine``: export and TensorRT build in one go.

The build runs against the contract double (tests/trt_double): this checks the wiring — which
files reach mnn-build's code and where plans land — not that TensorRT builds them.
"""

from __future__ import annotations

import shutil

import pytest
from trt_double.install import installed

import mnn_edge.export.cli as export_cli
import mnn_edge.export.exporter as export_pipeline
from mnn_edge.artifact import MODEL_NAMES, ModelKind
from mnn_edge.artifact.sidecar import read_sidecar
from mnn_edge.errors import MissingDependencyError, MnnEdgeError
from mnn_edge.runtime import tensorrt_available


@pytest.fixture
def exported_from_fixture(monkeypatch, random_export):
    """Make the FP32 export step copy the session's random export instead of exporting again."""
    def fake_export(cfg, ckpt):
        cfg.out.mkdir(parents=True, exist_ok=True)
        paths = {}
        for kind, name in MODEL_NAMES.items():
            paths[kind] = cfg.out / f"{name}.onnx"
            shutil.copy(random_export / f"{name}.onnx", paths[kind])
        return paths

    monkeypatch.setattr(export_pipeline, "export_fp32", fake_export)


@pytest.mark.skipif(tensorrt_available(), reason="TensorRT is installed here")
def test_engine_without_tensorrt_fails_before_exporting(tmp_path):
    with pytest.raises(MissingDependencyError, match=r"mnn-edge\[trt\]"):
        export_cli.main(["--random-init", "--out", str(tmp_path / "out"), "--engine", "fp16"])
    assert not (tmp_path / "out").exists()


def test_engine_int8_needs_the_qdq_artifact(tmp_path):
    with installed("10.3"), pytest.raises(MnnEdgeError, match="--engine int8 .* add --int8"):
        export_cli.main(["--random-init", "--out", str(tmp_path), "--engine", "int8"])


def test_engine_recipe_needs_engine(tmp_path):
    with pytest.raises(MnnEdgeError, match="--engine-recipe only applies with --engine"):
        export_cli.main(["--random-init", "--out", str(tmp_path), "--engine-recipe", "engines/orin-nano.toml"])


def test_export_then_build_fp32_plans_for_both_models(tmp_path, exported_from_fixture, capsys):
    out, engines = tmp_path / "export", tmp_path / "engines"
    with installed("11.4"):
        assert export_cli.main(["--random-init", "--out", str(out), "--engine", "fp32",
                                "--engines-dir", str(engines), "--engine-recipe", "engines/orin-nano.toml"]) == 0
    plans = sorted(p.name for p in engines.glob("*.plan"))
    assert plans == ["mnn.fp32.plan", "pose.fp32.plan"]
    side = read_sidecar(engines / "pose.fp32.plan")
    assert side.source_onnx.endswith("pose.onnx") and side.metadata.kind is ModelKind.POSE
    assert "wrote " + str(engines / "mnn.fp32.plan") in capsys.readouterr().out
