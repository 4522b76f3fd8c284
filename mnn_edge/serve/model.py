"""The MLServer runtime that serves any artifact ``open_runner`` opens (.onnx, .pt, .plan).

One :class:`RunnerModel` per artifact. Every request is checked on its own first
(:mod:`mnn_edge.serve.requests`): a bad one is answered 400 with its own fault and never reaches
the batcher. Checked requests are merged by :class:`mnn_edge.serve.batching.RowBatcher`, which
splits the answer by the rows it counted itself (MLServer's own adaptive batching is off: it
splits by the shapes clients declare). The runner lives on one thread of its own: inference leaves
the event loop free to take (and batch) the next requests while a batch runs, the runner is never
called from two threads at once, and a TensorRT runner stays on the thread that created its CUDA
context. A merged batch above the artifact's own limit (an engine profile) is split here, and every
call is at most ``batch_rows`` crops (memory stays bounded by the merge size, not the request). The
model metadata carries the artifact's mnn-edge metadata as ``parameters["mnn_edge"]`` and the
per-request crop limit as ``parameters["max_batch"]`` (what the remote runner reads).

Imports mlserver: only ``mnn-serve``'s process loads this module. (``tritonclient.grpc`` and
``mlserver`` register the same ``inference.*`` protobuf names and cannot share a process.)
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.codecs.numpy import to_datatype
from mlserver.errors import InferenceError
from mlserver.repository import ModelRepository
from mlserver.settings import ModelSettings
from mlserver.types import InferenceRequest, InferenceResponse, MetadataModelResponse, MetadataTensor, Parameters

from mnn_edge.artifact import METADATA_KEY
from mnn_edge.runtime.chunks import infer_in_chunks
from mnn_edge.runtime.inputs import random_input
from mnn_edge.serve.artifacts import open_artifact
from mnn_edge.serve.batching import RowBatcher
from mnn_edge.serve.requests import InputRule, RequestError, check_array, check_header

MAX_BATCH_PARAMETER = "max_batch"  # crops one request may carry, in the model metadata's parameters
UNBATCHED_CALL_ROWS = 8  # with batching off, the most crops of one request per model call


class RunnerModel(MLModel):
    """``settings.parameters.uri``: the artifact; ``extra``: ``device``, ``threads``, ``request_rows``
    (crops one request may carry), ``batch_rows`` (crops merged into one call; <= 1: no merging),
    ``batch_wait_s``."""

    async def load(self) -> bool:
        extra = self.settings.parameters.extra or {}
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"mnn-{self.name}")
        self._runner = await self._on_runner_thread(open_artifact, self.settings.parameters.uri,
                                                    extra.get("device", "auto"), int(extra.get("threads", 0)))
        spec, meta = self._runner.input_spec, self._runner.metadata
        # One warm-up call: the first run allocates, and it tells the outputs' shapes and dtypes.
        sample = await self._on_runner_thread(self._runner.infer, random_input(1, meta.input_size, seed=0))
        self.inputs = [MetadataTensor(name=spec.name, datatype="FP32", shape=[-1, 3, meta.input_size,
                                                                              meta.input_size])]
        self.outputs = [MetadataTensor(name=k, datatype=to_datatype(v.dtype),
                                       shape=[-1, *v.shape[1:]]) for k, v in sample.items()]
        self._meta_json = json.dumps(json.loads(meta.to_json()), sort_keys=True, ensure_ascii=False)
        self._rule = InputRule(spec.name, meta.input_size, int(extra.get("request_rows", 64)))
        batch_rows = int(extra.get("batch_rows", 0))
        # a request of up to request_rows crops still runs in chunks of the merge size: ONNX Runtime
        # keeps the memory a batch grew, so the largest call, not the largest request, sets the RSS
        self._chunk = batch_rows if batch_rows > 1 else UNBATCHED_CALL_ROWS
        self._batcher = None
        if batch_rows > 1:
            self._batcher = RowBatcher(self._run, batch_rows, float(extra.get("batch_wait_s", 0.0)))
        return True

    async def _run(self, batch):
        return await self._on_runner_thread(infer_in_chunks, self._runner, batch, self._chunk)

    async def _on_runner_thread(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def metadata(self) -> MetadataModelResponse:
        md = await super().metadata()
        # The limit is per request; infer_in_chunks fits every call to the engine's profile.
        md.parameters = Parameters(**{METADATA_KEY: self._meta_json, MAX_BATCH_PARAMETER: str(self._rule.max_rows)})
        md.platform = f"mnn-edge/{self._runner.backend}"
        return md

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        try:
            batch = self._checked_input(payload)
        except RequestError as e:
            raise InferenceError(f"model '{self.name}': {e}") from None
        wanted = [o.name for o in payload.outputs] if payload.outputs else self.outputs_names
        unknown = sorted(set(wanted) - set(self.outputs_names))
        if unknown:
            raise InferenceError(f"model '{self.name}' has no output(s) {', '.join(unknown)}; it has "
                                 f"{', '.join(self.outputs_names)}")
        outputs = await (self._batcher.infer(batch) if self._batcher else self._run(batch))
        return InferenceResponse(model_name=self.name, model_version=self.version, id=payload.id,
                                 outputs=[NumpyCodec.encode_output(k, outputs[k]) for k in wanted])

    @property
    def outputs_names(self) -> list[str]:
        return [o.name for o in self.outputs]

    def _checked_input(self, payload: InferenceRequest):
        """The request's one input as a (N, 3, S, S) float32 array, checked on its own."""
        names = [i.name for i in payload.inputs]
        first = payload.inputs[0] if payload.inputs else None
        rows = check_header(self._rule, names, list(first.shape) if first else [], first.datatype if first else "")
        try:
            flat = _flat_values(first)
        except (ValueError, TypeError) as e:
            raise RequestError(f"input '{first.name}' data cannot be read as FP32 ({e})") from None
        return check_array(self._rule, rows, flat)

    async def unload(self) -> bool:
        if getattr(self, "_batcher", None) is not None:
            await self._batcher.close()
        runner, self._runner = getattr(self, "_runner", None), None
        if runner is not None:
            await self._on_runner_thread(runner.close)
        self._executor.shutdown(wait=False)
        return True


def _flat_values(request_input) -> np.ndarray:
    """Every value the input carries, flat, as sent (JSON list or binary bytes), its declared
    shape not applied: whether the two agree is checked by the caller."""
    from mlserver.codecs.numpy import _to_ndarray  # the codec's reader, before its reshape

    return np.asarray(_to_ndarray(request_input)).reshape(-1)


class ArtifactRepository(ModelRepository):
    """The server's model repository: the artifacts on mnn-serve's command line, so the V2
    repository index lists exactly them (MLServer's default one scans a folder for settings files)."""

    def __init__(self, root: str = "", models: list[dict] | None = None):
        self._models = [ModelSettings.model_validate(dict(m)) for m in models or []]

    async def list(self) -> list[ModelSettings]:
        return list(self._models)

    async def find(self, name: str) -> list[ModelSettings]:
        return [m for m in self._models if m.name == name]
