"""Fake ``pycuda.driver``: the subset mnn_edge.runtime.tensorrt.cuda_memory uses.

Each signature is written from pycuda 2026.1's ``src/wrapper/wrap_cudadrv.cpp`` (the Boost.Python
definitions) and ``src/cpp/cuda.hpp``:
  init(flags=0); Device(i); Device.count() [static]; Device.name(); Device.compute_capability()
  -> (major, minor); Device.retain_primary_context() -> Context (cuDevicePrimaryCtxRetain);
  Context.push(); Context.pop() [static]; Context.detach(); Stream(flags=0) with .handle and
  .synchronize(); mem_alloc(bytes) -> DeviceAllocation (int() = address, .free());
  pagelocked_empty(shape, dtype, order="C", mem_flags=0) -> ndarray whose .base is a
  HostAllocation with .free(); memcpy_htod_async(dest, src, stream=None);
  memcpy_dtoh_async(dest, src, stream=None). Errors derive from ``pycuda.driver.Error``.
"""

from __future__ import annotations

import ctypes
import itertools
import types

import numpy as np

from .gpu import FakeCudaError, FakeGpu


def make_pycuda(gpu: FakeGpu) -> tuple[types.ModuleType, types.ModuleType]:
    driver = types.ModuleType("pycuda.driver")
    streams = itertools.count(1)
    state = {"initialised": False}

    class Error(Exception):
        pass

    class LogicError(Error):
        pass

    def init(flags=0):
        state["initialised"] = True

    def _need_init():
        if not state["initialised"]:
            raise LogicError("cuInit has not been called")

    class Context:
        def __init__(self, device):
            self.device = device
            self.detached = False

        def push(self):
            if self.detached:
                raise LogicError("context was detached")
            gpu.context_stack.append(self)

        @staticmethod
        def pop():
            if not gpu.context_stack:
                raise LogicError("cuCtxPopCurrent failed: no context on the stack")
            gpu.context_stack.pop()

        def detach(self):
            if self in gpu.context_stack:
                raise LogicError("detaching a context that is still on the stack")
            self.detached = True
            gpu.calls.append(("ctx_release", None))

        @staticmethod
        def synchronize():
            gpu.require_context("Context.synchronize")

    class Device:
        def __init__(self, index):
            _need_init()
            if not 0 <= index < 1:
                raise LogicError(f"cuDeviceGet failed: invalid device ordinal {index}")
            self.index = index

        @staticmethod
        def count():
            _need_init()
            return 1

        def name(self):
            return gpu.name

        def compute_capability(self):
            return gpu.compute_capability

        def retain_primary_context(self):
            gpu.calls.append(("ctx_retain", None))
            return Context(self)

    class Stream:
        def __init__(self, flags=0):
            gpu.require_context("Stream()")
            self.handle = next(streams)

        def synchronize(self):
            gpu.require_context("Stream.synchronize")
            gpu.calls.append(("sync", self.handle))

    class DeviceAllocation:
        def __init__(self, nbytes):
            self._addr = gpu.malloc(nbytes)
            self._freed = False

        def __int__(self):
            return self._addr

        __index__ = __int__

        def free(self):
            gpu.require_context("DeviceAllocation.free")
            if not self._freed:
                gpu.free(self._addr)
                self._freed = True

    class HostAllocation:
        def __init__(self, n, dtype):
            dtype = np.dtype(dtype)
            self._addr = gpu.host_alloc(n * dtype.itemsize)
            self.__array_interface__ = {"shape": (n,), "typestr": dtype.str, "version": 3,
                                        "data": (self._addr, False)}

        def free(self):
            gpu.host_free(self._addr)

    def mem_alloc(nbytes):
        return DeviceAllocation(int(nbytes))

    def pagelocked_empty(shape, dtype, order="C", mem_flags=0):
        gpu.require_context("pagelocked_empty")
        n = int(np.prod(shape))
        arr = np.asarray(HostAllocation(n, dtype))  # .base is the HostAllocation, as pycuda's numpy_empty sets it
        return arr if np.ndim(shape) == 0 else arr.reshape(shape)

    def _stream_handle(stream):
        if stream is None:
            return 0
        return stream.handle

    def memcpy_htod_async(dest, src, stream=None):
        gpu.require_context("memcpy_htod_async")
        view = memoryview(src).cast("B")
        gpu.htod(_stream_handle(stream), int(dest), lambda: view, view.nbytes)

    def memcpy_dtoh_async(dest, src, stream=None):
        gpu.require_context("memcpy_dtoh_async")
        out = memoryview(dest).cast("B")

        def write(data):
            out[:] = data
        gpu.dtoh(_stream_handle(stream), write, int(src), out.nbytes)

    for name, obj in dict(Error=Error, LogicError=LogicError, init=init, Context=Context, Device=Device,
                          Stream=Stream, DeviceAllocation=DeviceAllocation, HostAllocation=HostAllocation,
                          mem_alloc=mem_alloc, pagelocked_empty=pagelocked_empty,
                          memcpy_htod_async=memcpy_htod_async, memcpy_dtoh_async=memcpy_dtoh_async).items():
        setattr(driver, name, obj)
    pkg = types.ModuleType("pycuda")
    pkg.__path__ = []
    pkg.driver = driver
    _ = ctypes  # (ctypes is used by gpu.host_alloc)
    return pkg, driver


__all__ = ["FakeCudaError", "make_pycuda"]
