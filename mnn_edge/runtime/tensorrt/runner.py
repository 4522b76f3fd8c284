"""TensorRT backend: a ``.plan`` + its JSON sidecar behind the same ``Runner`` interface as ONNX Runtime.

Pure Python (no C++ API): the TensorRT Python bindings for the engine, ``cuda_memory`` for the
context, stream and buffers. The sequence follows the TensorRT Python API reference and NVIDIA's
``samples/python/common_runtime.py``:

1. :func:`mnn_edge.runtime.tensorrt.loader.load_engine`: the sidecar's checks, a CUDA context,
   ``Runtime(logger).deserialize_cuda_engine(plan)``. The runner starts from the loaded engine.
2. I/O tensors by name: ``num_io_tensors`` / ``get_tensor_name(i)`` / ``get_tensor_mode`` /
   ``get_tensor_dtype`` / ``get_tensor_profile_shape(name, 0)`` -> [min, opt, max]
   (ICudaEngine docs). One page-locked host buffer and one device buffer per tensor, sized for the
   profile's max shape, so a batch change needs no reallocation.
3. Per batch shape: ``IExecutionContext.set_input_shape(name, shape)`` (returns bool), then
   ``get_tensor_shape(output)`` for the resolved output shapes; ``set_tensor_address(name, ptr)``
   once for every I/O tensor; ``execute_async_v3(stream_handle)`` (returns bool) between the
   async copies, then one stream synchronisation.
4. Optional CUDA graph (``cuda_graph=True``) for a fixed shape: run once normally after the shape
   is set — TensorRT's developer guide (Performance best practices, "CUDA Graphs") says to call
   enqueue once before capture so deferred shape-dependent work is done — then capture the
   copies + ``execute_async_v3`` and replay the graph; a new batch shape recaptures.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from mnn_edge.errors import MnnEdgeError
from mnn_edge.runtime.base import InputSpec, Runner
from mnn_edge.runtime.tensorrt.loader import LoadedEngine, load_engine


def numpy_dtype(trt, trt_dtype) -> np.dtype:
    """``trt.nptype`` (a helper in the bindings' __init__.py since 8.x) as a numpy dtype."""
    try:
        return np.dtype(trt.nptype(trt_dtype))
    except (TypeError, KeyError) as e:
        raise MnnEdgeError(f"engine tensor type {trt_dtype} has no numpy equivalent") from e


class TensorRTRunner(Runner):
    backend = "tensorrt"

    def __init__(self, path: str | Path, device: int = 0, cuda_graph: bool = False, cuda_backend: str | None = None):
        super().__init__(path)
        self._loaded: LoadedEngine | None = load_engine(path, device, cuda_backend)
        self._trt, self._cuda, self._engine = self._loaded.trt, self._loaded.cuda, self._loaded.engine
        self._context = None
        try:
            with self._cuda.active():
                self._context = self._engine.create_execution_context()
                if self._context is None:
                    raise MnnEdgeError(f"TensorRT could not create an execution context for {self.path} "
                                       f"(out of GPU memory?)")
                self._bind_io()
        except BaseException:
            self.close()
            raise
        self.cuda_graph = bool(cuda_graph) and self._cuda.graphs_supported()
        self.metadata = self._loaded.sidecar.metadata
        self.device = self._loaded.gpu.name
        self.provider = f"TensorRT {self._trt.__version__} ({self._cuda.backend}, {self.device})"

    # -- binding -----------------------------------------------------------------------------

    def _bind_io(self) -> None:
        trt, engine, ctx = self._trt, self._engine, self._context
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self._outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1:
            raise MnnEdgeError(f"{self.path} has {len(inputs)} inputs; mnn-edge engines have exactly one")
        name = inputs[0]
        lo, _opt, hi = (tuple(int(d) for d in s) for s in engine.get_tensor_profile_shape(name, 0))
        dtype = numpy_dtype(trt, engine.get_tensor_dtype(name))
        self.input_spec = InputSpec(name, (None, *hi[1:]), dtype, min_batch=lo[0], max_batch=hi[0])
        # Size every buffer for the profile's largest shape, read back after setting it.
        if not ctx.set_input_shape(name, hi):
            raise MnnEdgeError(f"TensorRT refused input shape {hi} for {self.path}")
        self._dtypes = {name: dtype}
        for out in self._outputs:
            self._dtypes[out] = numpy_dtype(trt, engine.get_tensor_dtype(out))
        sizes = {name: int(np.prod(hi))}
        sizes.update({out: int(np.prod(tuple(ctx.get_tensor_shape(out)))) for out in self._outputs})
        for tensor, elements in sizes.items():
            buf = self._cuda.allocate(tensor, elements, self._dtypes[tensor])
            if not ctx.set_tensor_address(tensor, buf.device):
                raise MnnEdgeError(f"TensorRT refused the device address for tensor '{tensor}'")
        self._shape: tuple[int, ...] | None = None
        self._out_shapes: dict[str, tuple[int, ...]] = {}

    # -- running -----------------------------------------------------------------------------
    def _set_shape(self, shape: tuple[int, ...]) -> None:
        if not self._context.set_input_shape(self.input_spec.name, shape):
            raise MnnEdgeError(f"TensorRT refused input shape {shape} (profile batch "
                               f"{self.input_spec.min_batch}..{self.input_spec.max_batch})")
        self._out_shapes = {o: tuple(int(d) for d in self._context.get_tensor_shape(o)) for o in self._outputs}
        self._shape = shape
        self._cuda.release_graph()  # a graph is only valid for the shape it was captured with

    def _htod(self) -> None:
        name = self.input_spec.name
        self._cuda.htod_async(self._cuda.buffers[name], int(np.prod(self._shape)) * self._dtypes[name].itemsize)

    def _execute(self) -> None:
        if not self._context.execute_async_v3(self._cuda.stream_handle):
            raise MnnEdgeError("TensorRT execute_async_v3 failed (see its log above)")

    def _dtoh(self) -> None:
        bufs = self._cuda.buffers
        for out, shape in self._out_shapes.items():
            self._cuda.dtoh_async(bufs[out], int(np.prod(shape)) * self._dtypes[out].itemsize)

    def _enqueue(self) -> None:
        self._htod()
        self._execute()
        self._dtoh()

    def _stage_input(self, batch: np.ndarray) -> None:
        """Set the shape if it changed and copy the batch into the page-locked input buffer."""
        if batch.shape != self._shape:
            self._set_shape(tuple(batch.shape))
        self._cuda.buffers[self.input_spec.name].host[: batch.size] = batch.reshape(-1)

    def _outputs_copy(self) -> dict[str, np.ndarray]:
        out = {}
        for name, shape in self._out_shapes.items():
            n = int(np.prod(shape))
            out[name] = self._cuda.buffers[name].host[:n].reshape(shape).astype(np.float32, copy=True)
        return out

    def _infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        cuda = self._cuda
        with cuda.active():
            self._stage_input(batch)
            if not self.cuda_graph:
                self._enqueue()
            elif cuda.has_graph:
                cuda.launch_graph()
            else:
                self._enqueue()  # the run before capture (see the module docstring)
                cuda.synchronize()
                cuda.capture(self._enqueue)
                cuda.launch_graph()
            cuda.synchronize()
        return self._outputs_copy()

    @property
    def infer_staged(self):
        """``infer_staged(batch) -> (outputs, {"h2d", "infer", "d2h": ms})`` for ``mnn-bench --breakdown``.

        Each stage is enqueued and waited for on its own (host clock around a stream
        synchronisation), so the three add up to slightly more than one :meth:`infer`. None with
        ``cuda_graph``: a replayed graph is one launch with nothing to split."""
        return None if self.cuda_graph else self._infer_staged

    def _infer_staged(self, batch: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        batch = self._prepare(batch)
        cuda, ms = self._cuda, {}
        with cuda.active():
            self._stage_input(batch)
            for name, enqueue in (("h2d", self._htod), ("infer", self._execute), ("d2h", self._dtoh)):
                t0 = time.perf_counter()
                enqueue()
                cuda.synchronize()
                ms[name] = (time.perf_counter() - t0) * 1e3
        return self._outputs_copy(), ms

    def close(self) -> None:
        """Context (with our CUDA context current), then the loaded engine: engine, runtime, buffers."""
        loaded = getattr(self, "_loaded", None)
        if loaded is None:
            return
        try:
            if loaded.cuda is not None:
                with loaded.cuda.active():
                    self._context = None
            self._engine = None
        finally:
            loaded.close()
            self._loaded = self._cuda = None
