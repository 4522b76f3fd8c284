"""The MLServer runtime that serves any artifact ``open_runner`` opens (.onnx, .pt, .plan).

One :class:`RunnerModel` per artifact. Its runner lives on one thread of its own: inference leaves
the event loop free to take (and adaptively batch) the next requests while a batch runs, the
runner is never called from two threads at once, and a TensorRT runner stays on the thread that
created its CUDA context. A merged batch above the artifact's own limit (an engine profile) is
split here, so clients may send any batch size. The model metadata carries the artifact's
mnn-edge metadata as ``parameters["mnn_edge"]`` (what the remote runner reads).

Imports mlserver: only ``mnn-serve``'s process loads this module. (``tritonclient.grpc`` and
``mlserver`` register the same ``inference.*`` protobuf names and cannot share a process.)
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.codecs.numpy import to_datatype
from mlserver.errors import InferenceError
from mlserver.repository import ModelRepository
from mlserver.settings import ModelSettings
from mlserver.types import InferenceRequest, InferenceResponse, MetadataModelResponse, MetadataTensor, Parameters

from mnn_edge.artifact import METADATA_KEY
from mnn_edge.errors import MnnEdgeError
from mnn_edge.runtime.inputs import random_input
from mnn_edge.serve.artifacts import open_artifact, run_split


class RunnerModel(MLModel):
    """``settings.parameters.uri``: the artifact; ``extra``: ``device``, ``threads``."""

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
        return True

    async def _on_runner_thread(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def metadata(self) -> MetadataModelResponse:
        md = await super().metadata()
        # No batch limit is advertised: run_split takes any batch, whatever the engine's profile.
        md.parameters = Parameters(**{METADATA_KEY: self._meta_json})
        md.platform = f"mnn-edge/{self._runner.backend}"
        return md

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        spec = self._runner.input_spec
        if len(payload.inputs) != 1 or payload.inputs[0].name != spec.name:
            got = ", ".join(i.name for i in payload.inputs)
            raise InferenceError(f"model '{self.name}' takes one input '{spec.name}', got: {got}")
        try:
            batch = NumpyCodec.decode_input(payload.inputs[0])
            outputs = await self._on_runner_thread(run_split, self._runner, batch)
        except (MnnEdgeError, ValueError) as e:  # wrong shape or dtype from a client that did not check
            raise InferenceError(f"model '{self.name}': {e}") from e
        wanted = [o.name for o in payload.outputs] if payload.outputs else list(outputs)
        unknown = sorted(set(wanted) - set(outputs))
        if unknown:
            raise InferenceError(f"model '{self.name}' has no output(s) {', '.join(unknown)}; it has "
                                 f"{', '.join(outputs)}")
        return InferenceResponse(model_name=self.name, model_version=self.version, id=payload.id,
                                 outputs=[NumpyCodec.encode_output(k, outputs[k]) for k in wanted])

    async def unload(self) -> bool:
        runner, self._runner = getattr(self, "_runner", None), None
        if runner is not None:
            await self._on_runner_thread(runner.close)
        self._executor.shutdown(wait=False)
        return True


class ArtifactRepository(ModelRepository):
    """The server's model repository: the artifacts on mnn-serve's command line, so the V2
    repository index lists exactly them (MLServer's default one scans a folder for settings files)."""

    def __init__(self, root: str = "", models: list[dict] | None = None):
        self._models = [ModelSettings.model_validate(dict(m)) for m in models or []]

    async def list(self) -> list[ModelSettings]:
        return list(self._models)

    async def find(self, name: str) -> list[ModelSettings]:
        return [m for m in self._models if m.name == name]
