"""Fake cuda-python runtime (``cuda.bindings.runtime``): the subset cuda_memory uses.

Signatures from cuda-python 13.4's docstrings (introspected from the installed wheel) and NVIDIA's
``samples/python/common_runtime.py``: every call returns ``(cudaError_t, *values)``;
cudaGetDeviceCount() -> count; cudaSetDevice(i); cudaGetDeviceProperties(i) -> prop (.name bytes,
.major, .minor); cudaStreamCreate() -> stream; cudaMallocHost(size) -> host ptr;
cudaMalloc(size) -> device ptr; cudaMemcpyAsync(dst, src, count, kind, stream);
cudaStreamSynchronize(stream); cudaFree / cudaFreeHost / cudaStreamDestroy;
cudaStreamBeginCapture(stream, mode: cudaStreamCaptureMode); cudaStreamEndCapture(stream) -> graph;
cudaGraphInstantiate(graph, unsigned long long flags) -> exec; cudaGraphLaunch(exec, stream);
cudaGraphExecDestroy(exec); cudaGraphDestroy(graph).
"""

from __future__ import annotations

import ctypes
import enum
import itertools
import types
from dataclasses import dataclass

from .gpu import FakeCudaError, FakeGpu


class cudaError_t(enum.IntEnum):  # noqa: N801 (the real name)
    cudaSuccess = 0
    cudaErrorInvalidValue = 1
    cudaErrorInsufficientDriver = 35
    cudaErrorStreamCaptureInvalidated = 901


class cudaMemcpyKind(enum.IntEnum):  # noqa: N801
    cudaMemcpyHostToHost = 0
    cudaMemcpyHostToDevice = 1
    cudaMemcpyDeviceToHost = 2


class cudaStreamCaptureMode(enum.IntEnum):  # noqa: N801
    cudaStreamCaptureModeGlobal = 0
    cudaStreamCaptureModeThreadLocal = 1
    cudaStreamCaptureModeRelaxed = 2


@dataclass
class cudaDeviceProp:  # noqa: N801
    name: bytes
    major: int
    minor: int


def make_cudart(gpu: FakeGpu, device_count: int = 1) -> types.ModuleType:
    rt = types.ModuleType("cuda.bindings.runtime")
    gpu.runtime_api = True
    ids = itertools.count(1)
    streams: set[int] = set()
    graphs: dict[int, list] = {}
    execs: dict[int, list] = {}
    ok = cudaError_t.cudaSuccess

    def cudaGetDeviceCount():
        if device_count == 0:
            return (cudaError_t.cudaErrorInsufficientDriver, None)
        return (ok, device_count)

    def cudaSetDevice(device):
        return (ok,)

    def cudaGetDeviceProperties(device):
        return (ok, cudaDeviceProp(gpu.name.encode() + b"\0" * 8, *gpu.compute_capability))

    def cudaStreamCreate():
        s = 1000 + next(ids)
        streams.add(s)
        return (ok, s)

    def cudaStreamDestroy(stream):
        streams.discard(int(stream))
        return (ok,)

    def cudaMallocHost(size):
        return (ok, gpu.host_alloc(int(size)))

    def cudaFreeHost(ptr):
        gpu.host_free(int(ptr))
        return (ok,)

    def cudaMalloc(size):
        return (ok, gpu.malloc(int(size)))

    def cudaFree(ptr):
        gpu.free(int(ptr))
        return (ok,)

    def cudaMemcpyAsync(dst, src, count, kind, stream):
        count = int(count)
        if kind == cudaMemcpyKind.cudaMemcpyHostToDevice:
            gpu.htod(int(stream), int(dst), lambda: ctypes.string_at(int(src), count), count)
        elif kind == cudaMemcpyKind.cudaMemcpyDeviceToHost:
            gpu.dtoh(int(stream), lambda data: ctypes.memmove(int(dst), data, count), int(src), count)
        else:
            return (cudaError_t.cudaErrorInvalidValue,)
        return (ok,)

    def cudaStreamSynchronize(stream):
        if int(stream) in gpu.capturing:
            return (cudaError_t.cudaErrorStreamCaptureInvalidated,)
        gpu.calls.append(("sync", int(stream)))
        return (ok,)

    def cudaStreamBeginCapture(stream, mode):
        if not isinstance(mode, cudaStreamCaptureMode):
            raise TypeError("mode must be a cudaStreamCaptureMode")
        gpu.capturing[int(stream)] = []
        return (ok,)

    def cudaStreamEndCapture(stream):
        ops = gpu.capturing.pop(int(stream))
        g = next(ids)
        graphs[g] = ops
        gpu.calls.append(("graph_captured", len(ops)))
        return (ok, g)

    def cudaGraphInstantiate(graph, flags):
        e = next(ids)
        execs[e] = graphs[int(graph)]
        return (ok, e)

    def cudaGraphLaunch(exec_, stream):
        gpu.calls.append(("graph_launch", int(exec_)))
        for op in execs[int(exec_)]:
            op()
        return (ok,)

    def cudaGraphExecDestroy(exec_):
        del execs[int(exec_)]
        return (ok,)

    def cudaGraphDestroy(graph):
        del graphs[int(graph)]
        return (ok,)

    for name, obj in list(locals().items()):
        if name.startswith("cuda") and callable(obj):
            setattr(rt, name, obj)
    for cls in (cudaError_t, cudaMemcpyKind, cudaStreamCaptureMode, cudaDeviceProp):
        setattr(rt, cls.__name__, cls)
    rt._live = (streams, graphs, execs)  # for leak checks
    return rt


__all__ = ["FakeCudaError", "make_cudart"]
