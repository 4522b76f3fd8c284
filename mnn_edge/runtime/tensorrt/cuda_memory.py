"""The one small CUDA module: a context, a stream, page-locked host + device buffers, copies, and
optional CUDA-graph capture — through pycuda when it is installed, else NVIDIA's cuda-python.

Context ownership is explicit: pycuda's ``autoinit`` is never imported (it makes a context at
import time and tears it down at exit, behind everyone's back). With pycuda we retain the
device's *primary* context — the same one the CUDA runtime API, and so TensorRT, uses — and push
it only around our own calls (``with session.active(): ...``), so several runners and other CUDA
users in the process do not fight over the context stack (the crashes of TensorRT issue 2357).
With cuda-python the runtime API owns the primary context; ``cudaSetDevice`` selects it.

Sources read (the names are checked by tests/test_api_surface.py against the committed lists):
- pycuda 2026.1 ``src/wrapper/wrap_cudadrv.cpp``: ``init``, ``Device(i)``, ``Device.count``,
  ``Device.name()``, ``Device.compute_capability()`` -> (major, minor),
  ``Device.retain_primary_context()``, ``Context.push()``, ``Context.pop()`` (static),
  ``Context.detach()``, ``Stream()`` + ``.handle`` + ``.synchronize()``, ``mem_alloc(n)`` ->
  ``DeviceAllocation`` (``int()`` is the address, ``.free()``), ``pagelocked_empty(shape, dtype)``
  (a numpy array whose ``.base`` is the ``HostAllocation`` with ``.free()``),
  ``memcpy_htod_async(dest, src, stream)``, ``memcpy_dtoh_async(dest, src, stream)``.
  pycuda has no stream-capture API, so CUDA graphs go through cuda-python's runtime on pycuda's
  stream when cuda-python is also installed, and are off otherwise.
- NVIDIA/TensorRT ``samples/python/common_runtime.py`` (cuda-python): ``cudaMallocHost`` wrapped as
  a numpy array through ctypes, ``cudaMalloc``, ``cudaMemcpyAsync(dst, src, n, kind, stream)``,
  ``cudaStreamSynchronize``, ``cudaFree``/``cudaFreeHost``/``cudaStreamDestroy``; every call
  returns ``(err, *values)``.
- cuda-python 13.4 ``cuda.bindings.runtime`` docstrings: ``cudaStreamBeginCapture(stream, mode)``,
  ``cudaStreamEndCapture(stream)`` -> graph, ``cudaGraphInstantiate(graph, flags)`` -> exec,
  ``cudaGraphLaunch(exec, stream)``; ``cudaGetDeviceProperties(i)`` -> ``prop.name/major/minor``.
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from mnn_edge.errors import MissingDependencyError, MnnEdgeError

INSTALL_HINT = "(or pip install cuda-python) on a machine with an NVIDIA GPU and driver"


def _import_cudart():
    """cuda-python's runtime module: ``cuda.bindings.runtime`` (12.6+), ``cuda.cudart`` before that."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart
        except ImportError:
            return None
    return cudart


def _import_pycuda():
    try:
        import pycuda.driver as driver
    except ImportError:
        return None
    return driver


@dataclass
class HostDeviceBuffer:
    """One I/O tensor's memory: a page-locked host array and a device allocation of the same size."""

    name: str
    host: np.ndarray  # flat, page-locked, capacity elements
    device: int  # device address
    nbytes: int
    _handles: tuple = ()  # backend objects to free


class CudaSession:
    """A device, its context, one stream, and the buffers allocated through it. ``close()`` frees all."""

    backend = "?"

    def __init__(self, device: int = 0):
        self.device_index = device
        self.buffers: dict[str, HostDeviceBuffer] = {}
        self._graph = None
        self._closed = False

    # -- interface every backend implements --------------------------------------------------
    def gpu_name(self) -> str: ...
    def compute_capability(self) -> tuple[int, int]: ...
    @property
    def stream_handle(self) -> int: ...
    def _alloc(self, name: str, nbytes: int, dtype: np.dtype) -> HostDeviceBuffer: ...
    def _free(self, buf: HostDeviceBuffer) -> None: ...
    def htod_async(self, buf: HostDeviceBuffer, nbytes: int) -> None: ...
    def dtoh_async(self, buf: HostDeviceBuffer, nbytes: int) -> None: ...
    def synchronize(self) -> None: ...
    def _release_context(self) -> None: ...

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Make our context current for the calls inside (a no-op for the runtime-API backend)."""
        yield

    # -- shared ------------------------------------------------------------------------------
    def allocate(self, name: str, elements: int, dtype: np.dtype) -> HostDeviceBuffer:
        dtype = np.dtype(dtype)
        nbytes = max(1, int(elements)) * dtype.itemsize
        with self.active():
            buf = self._alloc(name, nbytes, dtype)
        self.buffers[name] = buf
        return buf

    # CUDA graphs (fixed shapes only): capture once, then replay with one launch.
    def graphs_supported(self) -> bool:
        return _import_cudart() is not None

    def capture(self, enqueue) -> None:
        """Capture ``enqueue()`` (the H2D copies, execute_async_v3, the D2H copies) into a graph."""
        cudart = _import_cudart()
        if cudart is None:
            raise MnnEdgeError("CUDA-graph capture needs cuda-python: pip install cuda-python")
        self.release_graph()
        with self.active():
            _rt(cudart.cudaStreamBeginCapture(self.stream_handle,
                                              cudart.cudaStreamCaptureMode.cudaStreamCaptureModeGlobal))
            try:
                enqueue()
            finally:
                graph = _rt(cudart.cudaStreamEndCapture(self.stream_handle))
            exec_ = _rt(cudart.cudaGraphInstantiate(graph, 0))
        self._graph = (graph, exec_)

    def launch_graph(self) -> None:
        cudart = _import_cudart()
        with self.active():
            _rt(cudart.cudaGraphLaunch(self._graph[1], self.stream_handle))

    @property
    def has_graph(self) -> bool:
        return self._graph is not None

    def release_graph(self) -> None:
        if self._graph is not None:
            cudart = _import_cudart()
            graph, exec_ = self._graph
            self._graph = None
            with self.active():
                _rt(cudart.cudaGraphExecDestroy(exec_))
                _rt(cudart.cudaGraphDestroy(graph))

    def close(self) -> None:
        """Free graph, buffers, stream and context, in that order; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            self.release_graph()
            with self.active():
                for buf in self.buffers.values():
                    self._free(buf)
        finally:
            self.buffers.clear()
            self._release_context()


def _rt(result):
    """Unpack a cuda-python ``(err, *values)`` tuple, raising on a CUDA error."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        name = getattr(err, "name", str(err))
        raise MnnEdgeError(f"CUDA error {int(err)} ({name})")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


class PycudaSession(CudaSession):
    backend = "pycuda"

    def __init__(self, device: int = 0):
        super().__init__(device)
        cuda = _import_pycuda()
        self._cuda = cuda
        try:
            cuda.init()
            count = cuda.Device.count()
        except Exception as e:  # pycuda.driver.Error / LogicError: no driver, or no device visible
            raise MnnEdgeError(f"no usable NVIDIA GPU (pycuda: {e})") from e
        if not 0 <= device < count:
            raise MnnEdgeError(f"CUDA device {device} does not exist ({count} visible)")
        self._device = cuda.Device(device)
        self._context = self._device.retain_primary_context()
        with self.active():
            self._stream = cuda.Stream()

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        self._context.push()
        try:
            yield
        finally:
            self._cuda.Context.pop()

    def gpu_name(self) -> str:
        return self._device.name()

    def compute_capability(self) -> tuple[int, int]:
        major, minor = self._device.compute_capability()
        return int(major), int(minor)

    @property
    def stream_handle(self) -> int:
        return int(self._stream.handle)

    def _alloc(self, name, nbytes, dtype):
        host = self._cuda.pagelocked_empty(nbytes // dtype.itemsize, dtype)
        dev = self._cuda.mem_alloc(nbytes)
        return HostDeviceBuffer(name, host, int(dev), nbytes, (host.base, dev))

    def _free(self, buf):
        host_alloc, dev = buf._handles
        dev.free()
        host_alloc.free()

    def htod_async(self, buf, nbytes):
        # src is a buffer: the first nbytes of the page-locked array
        self._cuda.memcpy_htod_async(buf._handles[1], buf.host.view(np.uint8)[:nbytes], self._stream)

    def dtoh_async(self, buf, nbytes):
        self._cuda.memcpy_dtoh_async(buf.host.view(np.uint8)[:nbytes], buf._handles[1], self._stream)

    def synchronize(self):
        self._stream.synchronize()

    def _release_context(self):
        with self.active():
            self._stream = None  # pycuda destroys the stream when the object goes
        self._context.detach()  # releases our retain of the primary context


class CudaPythonSession(CudaSession):
    backend = "cuda-python"

    def __init__(self, device: int = 0):
        super().__init__(device)
        cudart = _import_cudart()
        self._rt = cudart
        err, count = cudart.cudaGetDeviceCount()
        if int(err) != 0:
            raise MnnEdgeError(f"no usable NVIDIA GPU (cuda-python: {getattr(err, 'name', err)})")
        if not 0 <= device < count:
            raise MnnEdgeError(f"CUDA device {device} does not exist ({count} visible)")
        _rt(cudart.cudaSetDevice(device))
        self._props = _rt(cudart.cudaGetDeviceProperties(device))
        self._stream = _rt(cudart.cudaStreamCreate())

    def gpu_name(self) -> str:
        name = self._props.name
        return (name.split(b"\0", 1)[0].decode() if isinstance(name, bytes) else str(name)).strip()

    def compute_capability(self) -> tuple[int, int]:
        return int(self._props.major), int(self._props.minor)

    @property
    def stream_handle(self) -> int:
        return int(self._stream)

    def _alloc(self, name, nbytes, dtype):
        host_ptr = _rt(self._rt.cudaMallocHost(nbytes))
        # As NVIDIA's common_runtime.py: view the page-locked block as a numpy array via ctypes.
        raw = (ctypes.c_uint8 * nbytes).from_address(int(host_ptr))
        host = np.frombuffer(raw, dtype=dtype)
        dev = _rt(self._rt.cudaMalloc(nbytes))
        return HostDeviceBuffer(name, host, int(dev), nbytes, (int(host_ptr), int(dev)))

    def _free(self, buf):
        host_ptr, dev = buf._handles
        _rt(self._rt.cudaFree(dev))
        _rt(self._rt.cudaFreeHost(host_ptr))

    def htod_async(self, buf, nbytes):
        _rt(self._rt.cudaMemcpyAsync(buf.device, buf.host.ctypes.data, nbytes,
                                     self._rt.cudaMemcpyKind.cudaMemcpyHostToDevice, self._stream))

    def dtoh_async(self, buf, nbytes):
        _rt(self._rt.cudaMemcpyAsync(buf.host.ctypes.data, buf.device, nbytes,
                                     self._rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, self._stream))

    def synchronize(self):
        _rt(self._rt.cudaStreamSynchronize(self._stream))

    def _release_context(self):
        # The runtime API's primary context stays for other users; never cudaDeviceReset here.
        if self._stream is not None:
            _rt(self._rt.cudaStreamDestroy(self._stream))
            self._stream = None


def cuda_backend_name() -> str | None:
    """Which backend ``open_cuda`` would use: "pycuda", "cuda-python", or None."""
    if _import_pycuda() is not None:
        return "pycuda"
    if _import_cudart() is not None:
        return "cuda-python"
    return None


def open_cuda(device: int = 0, prefer: str | None = None) -> CudaSession:
    """A CUDA session on ``device``: pycuda when installed (the project's named dependency), else
    cuda-python. ``prefer`` forces one of them."""
    name = prefer or cuda_backend_name()
    if name == "pycuda" and _import_pycuda() is not None:
        return PycudaSession(device)
    if name == "cuda-python" and _import_cudart() is not None:
        return CudaPythonSession(device)
    if prefer:
        raise MissingDependencyError(prefer, "trt", INSTALL_HINT)
    raise MissingDependencyError("pycuda", "trt", INSTALL_HINT)
