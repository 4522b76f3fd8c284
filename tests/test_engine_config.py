"""Build configuration: the committed target recipes, recipe errors, CLI overrides, naming."""

from __future__ import annotations

from pathlib import Path

import pytest

from mnn_edge.artifact import Precision
from mnn_edge.engine_build.cli import build_parser, config_from_args
from mnn_edge.errors import MnnEdgeError
from mnn_edge.runtime.tensorrt.config import BuildConfig, Typing, config_from_recipe, load_recipe
from mnn_edge.runtime.tensorrt.typing_plan import sibling_for

ENGINES = Path(__file__).resolve().parents[1] / "engines"


@pytest.mark.parametrize("name,precision,batches,dla", [
    ("orin-nano", Precision.FP16, (1, 1, 1), None),
    ("agx-orin", Precision.INT8, (1, 2, 4), None),
    ("x86-ampere", Precision.INT8, (1, 4, 8), None),
])
def test_committed_recipes(name, precision, batches, dla):
    cfg = config_from_recipe(ENGINES / f"{name}.toml")
    assert cfg.precision is precision and (cfg.min_batch, cfg.opt_batch, cfg.max_batch) == batches
    assert cfg.dla_core == dla and cfg.recipe == name and cfg.out_dir == Path("engines") / name
    assert cfg.timing_cache == Path(f"engines/{name}.timing.cache")


def test_recipe_errors_name_the_file_and_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[build]\nprecison = "fp16"\n')
    with pytest.raises(MnnEdgeError, match=r"bad\.toml: unknown key\(s\) precison"):
        load_recipe(bad)
    bad.write_text('[build]\nmax_batch = "four"\n')
    with pytest.raises(MnnEdgeError, match=r"bad value for 'max_batch': expected an integer"):
        load_recipe(bad)
    bad.write_text('[build]\nprecision = "int4"\n')
    with pytest.raises(MnnEdgeError, match="bad value for 'precision'"):
        load_recipe(bad)
    bad.write_text("precision = 'fp16'\n")
    with pytest.raises(MnnEdgeError, match=r"has no \[build\] table"):
        load_recipe(bad)
    bad.write_text("[build\n")
    with pytest.raises(MnnEdgeError, match="not valid TOML"):
        load_recipe(bad)
    with pytest.raises(MnnEdgeError, match="recipe not found"):
        load_recipe(tmp_path / "nope.toml")


def test_profile_and_limits_are_validated():
    with pytest.raises(MnnEdgeError, match="1 <= min <= opt <= max"):
        BuildConfig(min_batch=2, opt_batch=1, max_batch=4)
    with pytest.raises(MnnEdgeError, match="optimization level must be 0..5"):
        BuildConfig(optimization_level=7)
    with pytest.raises(MnnEdgeError, match="DLA core must be >= 0"):
        BuildConfig(dla_core=-1)


def test_flags_override_the_recipe():
    args = build_parser().parse_args(["x.onnx", "--recipe", str(ENGINES / "x86-ampere.toml"), "--max-batch", "16",
                                      "--precision", "fp16", "--no-timing-cache", "--typing", "weak", "--force"])
    cfg = config_from_args(args)
    assert cfg.max_batch == 16 and cfg.opt_batch == 4 and cfg.precision is Precision.FP16
    assert cfg.timing_cache is None and cfg.typing is Typing.WEAK and cfg.force
    assert cfg.settings()["precision"] == "fp16" and cfg.settings()["out_dir"] == "engines/x86-ampere"


def test_defaults_without_recipe():
    cfg = config_from_args(build_parser().parse_args(["x.onnx"]))
    assert cfg == BuildConfig()
    assert cfg.precision is None and cfg.max_batch == 1 and cfg.timing_cache == Path("engines/timing.cache")


def test_help_explains_flags(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    assert "--dla-core" in out and "--recipe" in out and "Q/DQ" in out


def test_tensorrt_builds_from_the_trt_flavour_siblings():
    assert sibling_for(Path("e/pose.onnx"), Precision.FP16) == Path("e/pose.fp16.onnx")
    assert sibling_for(Path("e/mnn.fp16.onnx"), Precision.INT8) == Path("e/mnn.int8-trt.onnx")
    assert sibling_for(Path("e/mnn.int8-trt.onnx"), Precision.FP32) == Path("e/mnn.onnx")


def test_build_modules_import_neither_torch_nor_tensorrt():
    import subprocess
    import sys

    code = ("import sys, mnn_edge.engine_build.cli, mnn_edge.runtime.tensorrt.build, "
            "mnn_edge.runtime.tensorrt.runner; "
            "print(sorted(m for m in ('torch', 'tensorrt', 'pycuda', 'cuda') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
