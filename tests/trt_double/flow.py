"""One pass through every TensorRT code path mnn-edge has, against the double (for the API-surface
test, which then checks each name touched exists in the real release)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mnn_edge.artifact import Precision
from mnn_edge.errors import MnnEdgeError
from mnn_edge.runtime.tensorrt.build import build_engine
from mnn_edge.runtime.tensorrt.config import BuildConfig
from mnn_edge.runtime.tensorrt.runner import TensorRTRunner

from .gpu import FakeGpu
from .install import installed
from .models import write_tiny


def run_all_paths(tmp: Path, version: str) -> None:
    """Builds (fp32/fp16/int8, DLA, timing cache, progress), a parser failure, and inference with
    both CUDA backends (with a CUDA graph on cuda-python)."""
    x = np.zeros((2, 3, 8, 8), np.float32)
    for cuda in ("pycuda", "cuda-python"):
        with installed(version, cuda, gpu=FakeGpu(dla_cores=1)):
            for p in (Precision.FP32, Precision.FP16, Precision.INT8):
                src = write_tiny(tmp / "src", p)
                cfg = BuildConfig(precision=p, max_batch=2, out_dir=tmp / cuda, timing_cache=tmp / "tc",
                                  force=True, progress=True, optimization_level=2)
                plan = build_engine(src, cfg)
                with TensorRTRunner(plan, cuda_graph=True) as r:
                    r.infer(x)
                    r.infer(x)
            if not version.startswith("11"):
                src = write_tiny(tmp / "src", Precision.FP16)
                build_engine(src, BuildConfig(precision=Precision.FP16, dla_core=0, out_dir=tmp / "dla", force=True,
                                              timing_cache=None))
            bad = write_tiny(tmp / "bad", bad_op=True)
            try:
                build_engine(bad, BuildConfig(out_dir=tmp / "bad", force=True, timing_cache=None))
            except MnnEdgeError:
                pass
