"""Put the fake modules in ``sys.modules`` for the length of a ``with`` block (and take them out)."""

from __future__ import annotations

import contextlib
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass

from .fake_cudart import make_cudart
from .fake_pycuda import make_pycuda
from .fake_tensorrt import make_tensorrt
from .gpu import FakeGpu

CUDA_NAMES = ("pycuda", "pycuda.driver", "cuda", "cuda.bindings", "cuda.bindings.runtime", "cuda.cudart")


@dataclass
class Double:
    trt: types.ModuleType
    gpu: FakeGpu
    cuda: str


@contextlib.contextmanager
def installed(version: str = "10.3", cuda: str = "pycuda", gpu: FakeGpu | None = None,
              tensorrt: bool = True) -> Iterator[Double]:
    """``cuda``: "pycuda", "cuda-python" or "none" (neither importable)."""
    gpu = gpu or FakeGpu()
    trt = make_tensorrt(version, gpu)
    mods: dict[str, types.ModuleType | None] = {name: None for name in CUDA_NAMES}
    mods["tensorrt"] = trt if tensorrt else None
    if cuda == "pycuda":
        pkg, driver = make_pycuda(gpu)
        mods.update({"pycuda": pkg, "pycuda.driver": driver})
    elif cuda == "cuda-python":
        rt = make_cudart(gpu)
        bindings = types.ModuleType("cuda.bindings")
        bindings.__path__ = []
        bindings.runtime = rt
        root = types.ModuleType("cuda")
        root.__path__ = []
        root.bindings = bindings
        mods.update({"cuda": root, "cuda.bindings": bindings, "cuda.bindings.runtime": rt})
    elif cuda != "none":
        raise ValueError(cuda)
    saved = {name: sys.modules.get(name, _MISSING) for name in mods}
    sys.modules.update(mods)
    try:
        yield Double(trt, gpu, cuda)
    finally:
        for name, old in saved.items():
            if old is _MISSING:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old


_MISSING = object()
