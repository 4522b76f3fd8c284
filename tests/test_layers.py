"""The import direction of docs/ARCHITECTURE.md: every import (lazy ones too) points down a layer
or stays inside its own package, so packages form no cycle."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "mnn_edge"
SCRIPTS = ROOT.parent / "bench"

# Lowest first. A module may import its own package and anything in a lower layer, nothing else.
LAYERS = (
    ("errors",),
    ("fileio", "cli_util", "geometry", "meanface", "host", "doc_commands"),
    ("artifact",),
    ("preprocess", "model"),
    ("checkpoint", "frame"),
    ("runtime",),
    ("data",),
    ("quantize",),
    ("export", "evaluate", "bench"),
    ("report", "run", "train", "serve", "engine_build"),
)
LAYER = {unit: i for i, units in enumerate(LAYERS) for unit in units}


def unit_of(module: str) -> str:
    """mnn_edge.runtime.tensorrt.build -> runtime; mnn_edge.fileio -> fileio."""
    return module.split(".")[1]


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mnn_edge."):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("mnn_edge.")}
    return found


def edges() -> list[tuple[str, str, str]]:
    out = []
    for path in sorted(ROOT.rglob("*.py")):
        module = ".".join(("mnn_edge",) + path.relative_to(ROOT).with_suffix("").parts)
        for target in imports(path):
            out.append((module, target, str(path.relative_to(ROOT.parent))))
    return out


def test_every_package_has_a_layer():
    units = {p.stem if p.is_file() else p.name for p in ROOT.iterdir()
             if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())}
    assert units == set(LAYER), "add new packages to LAYERS here and in docs/ARCHITECTURE.md"


def test_imports_point_down_only():
    upward = [f"{where}: {src} imports {dst}" for src, dst, where in edges()
              if unit_of(src) != unit_of(dst) and LAYER[unit_of(dst)] >= LAYER[unit_of(src)]]
    assert upward == []


# The crop a frame takes at inference is mnn_edge.frame's (below the runtime layer); the data
# package makes training data. Of the command lines that run artifacts, only the modules that
# make test clips (synthetic faces; real photos with their truth) read it.
MAKES_CLIPS = {"mnn_edge.run.synth_video", "mnn_edge.run.track_videos"}


def test_inference_does_not_go_through_the_training_data_package():
    found = [f"{where}: {src} imports {dst}" for src, dst, where in edges()
             if unit_of(dst) == "data" and unit_of(src) in ("run", "bench", "serve") and src not in MAKES_CLIPS]
    assert found == []


def test_the_check_sees_lazy_imports(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("def f():\n    from mnn_edge.report.cli import main\n")
    assert imports(src) == {"mnn_edge.report.cli"}


def cli_imports(path: Path) -> set[str]:
    """The ``*.cli`` modules a file imports, however spelled (``from pkg import cli`` included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            found |= {n for n in names if n.startswith("mnn_edge.") and n.endswith(".cli")}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("mnn_edge.") and a.name.endswith(".cli")}
    return found


def test_nothing_imports_a_command_line():
    # A cli.py is flags -> config -> one library call; what others need lives in a library module.
    # Only a package's __main__ (python -m) starts its own command line; console scripts are in pyproject.
    files = [p for p in sorted(ROOT.rglob("*.py")) + sorted(SCRIPTS.rglob("*.py")) if p.stem != "__main__"]
    found = [f"{p.relative_to(ROOT.parent)} imports {m}" for p in files for m in sorted(cli_imports(p))]
    assert found == []


def test_the_cli_check_sees_every_spelling(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("import mnn_edge.bench.cli as c\nfrom mnn_edge.run import cli\n"
                   "def f():\n    from mnn_edge.serve.cli import main\n")
    assert cli_imports(src) == {"mnn_edge.bench.cli", "mnn_edge.run.cli", "mnn_edge.serve.cli"}
