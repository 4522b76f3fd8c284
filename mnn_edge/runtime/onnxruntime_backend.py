"""ONNX Runtime backend: CPU by default, the CUDA execution provider when onnxruntime-gpu has it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mnn_edge.artifact import METADATA_KEY, ModelMetadata
from mnn_edge.errors import MnnEdgeError
from mnn_edge.fileio import require_file
from mnn_edge.runtime.base import InputSpec, Runner


def session_options(threads: int = 0, memory_arena: bool = True):
    """The ``SessionOptions`` of every ONNX Runtime session the toolkit creates.

    Spinning is off: by default ORT's intra-op threads busy-wait after each run, so where several
    sessions share a process (mnn-bench and the report time artifacts interleaved; mnn-run runs
    the detector beside the model) the idle sessions' spinning threads take the cores of the one
    being timed. Measured here (2 cores, pose.onnx p50 at batch 1): 70.5 ms interleaved with
    spinning, 34.6 ms without, 37.8 ms for one session alone (issue 16; bench/README.md).
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads  # 0 = ONNX Runtime's default (all cores)
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # The CPU arena keeps the largest batch's memory for the session's life: right for a camera
    # loop, not for a server whose requests vary (mnn-serve turns it off: 245 MB instead of 763 MB
    # resident at rest, 423 instead of 1,201 MB after 64-crop requests, +0.5 ms per pose INT8 call).
    opts.enable_cpu_mem_arena = memory_arena
    return opts


def read_onnx_metadata(session) -> ModelMetadata:
    props = session.get_modelmeta().custom_metadata_map
    if METADATA_KEY not in props:
        raise MnnEdgeError("this ONNX file has no mnn-edge metadata; export it with mnn-export")
    return ModelMetadata.from_json(props[METADATA_KEY])


def check_graph_matches(session, meta: ModelMetadata, path: Path) -> None:
    """The graph is what its metadata says: one (N, 3, S, S) float input named as stored, every
    listed output present. Metadata copied onto another graph fails here, in one line, instead of
    deep inside a run."""
    inputs = session.get_inputs()
    want = [meta.input_name, 3, meta.input_size, meta.input_size]
    found = [inputs[0].name, *inputs[0].shape[1:]] if len(inputs) == 1 else None
    if found != want or inputs[0].type != "tensor(float)" or len(inputs[0].shape) != 4:
        shapes = ", ".join(f"{i.name} {i.shape} {i.type}" for i in inputs)
        raise MnnEdgeError(f"{path}: its metadata describes input '{meta.input_name}' (N, 3, {meta.input_size}, "
                           f"{meta.input_size}) float, the graph has {shapes}: not an mnn-edge export; "
                           "re-export it with mnn-export")
    missing = sorted(set(meta.outputs) - {o.name for o in session.get_outputs()})
    if missing:
        raise MnnEdgeError(f"{path}: its metadata lists output(s) {', '.join(missing)} that the graph lacks: "
                           "not an mnn-edge export; re-export it with mnn-export")


class OnnxRuntimeRunner(Runner):
    backend = "onnxruntime"

    def __init__(self, path: str | Path, device: str = "cpu", threads: int = 0, memory_arena: bool = True):
        super().__init__(require_file(path, "ONNX model"))
        import onnxruntime as ort

        opts = session_options(threads, memory_arena)
        providers = ["CPUExecutionProvider"]
        if device == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise MnnEdgeError("ONNX Runtime has no CUDA provider here: pip install onnxruntime-gpu "
                                   "(instead of onnxruntime) on a machine with an NVIDIA GPU")
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self._session = ort.InferenceSession(str(self.path), opts, providers=providers)
        except Exception as e:  # ORT raises its own Fail/InvalidProtobuf/... types
            raise MnnEdgeError(f"{self.path} is not a loadable ONNX model: {str(e).splitlines()[0]}") from e
        self.metadata = read_onnx_metadata(self._session)
        check_graph_matches(self._session, self.metadata, self.path)
        inp = self._session.get_inputs()[0]
        dims = tuple(d if isinstance(d, int) else None for d in inp.shape)
        self.input_spec = InputSpec(inp.name, dims, np.dtype(np.float32))
        self._outputs = [o.name for o in self._session.get_outputs()]
        self.provider = self._session.get_providers()[0]
        self.device = "cuda" if self.provider != "CPUExecutionProvider" else "cpu"

    def _infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        values = self._session.run(self._outputs, {self.input_spec.name: batch})
        return dict(zip(self._outputs, values))

    def close(self) -> None:
        self._session = None
