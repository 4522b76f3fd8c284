"""Shared fixtures. Heavy artifacts are made once per session; tests must not modify them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SHARED_DATA = SHARED / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the checkout; tests that need it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def shared_mirror() -> Path:
    """``../shared`` itself, laid out as ``mnn-data fetch all --from`` reads a mirror; skip when absent."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} not present")
    return SHARED


@pytest.fixture(scope="session")
def random_export(tmp_path_factory) -> Path:
    """A folder with pose.onnx and mnn.onnx exported from deterministic random weights (read-only use)."""
    from mnn_edge.export.cli import main

    out = tmp_path_factory.mktemp("export")
    assert main(["--random-init", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def random_checkpoint(tmp_path_factory) -> Path:
    """A saved checkpoint of the same deterministic random weights as ``random_export``."""
    from mnn_edge.checkpoint import Checkpoint, save_checkpoint
    from mnn_edge.model import MNN, init_weights

    model = MNN(68)
    init_weights(model, seed=0)
    path = tmp_path_factory.mktemp("ckpt") / "random.pt"
    save_checkpoint(Checkpoint(model=model.eval()), path)
    return path


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory) -> Path:
    """16 synthetic faces (seed 0, 256x256, ``synth_0000NN.jpg`` + ``.mat``) rendered once (read-only use)."""
    from mnn_edge.data.synth import write_synthetic

    out = tmp_path_factory.mktemp("synthetic")
    write_synthetic(out, 16, seed=0, image_size=256, progress=False)
    return out


def pytest_configure(config):
    config.addinivalue_line("markers", "reliability: the bad-input / failure suite of docs/RELIABILITY.md")
    # Keep the 2-core CI machine responsive and timings stable.
    os.environ.setdefault("OMP_NUM_THREADS", "2")
