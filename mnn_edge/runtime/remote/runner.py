"""A model on an inference server (KServe V2 protocol) as a :class:`Runner`, through ``tritonclient``.

Works the same against NVIDIA Triton (a ``mnn-export --triton-repo`` repository) and ``mnn-serve``
(MLServer). What the runner needs besides the V2 model metadata (input/output names, datatypes,
shapes) is the artifact's mnn-edge metadata and the batch limit; it looks for them in one order:

1. the model metadata's ``parameters["mnn_edge"]``: where ``mnn-serve`` puts it (MLServer has no
   model-config endpoint; its metadata has parameters), with ``parameters["max_batch"]``, the crops
   one request may carry (mnn-serve fits merged batches to the served artifact itself);
2. else the model config's ``parameters["mnn_edge"]`` and ``max_batch_size``: Triton's (its model
   metadata has no parameters; its config is the ``config.pbtxt`` the repository writer wrote;
   ``max_batch_size`` 0 = no batching, one item per request).

The wire (gRPC or HTTP, tritonclient's failures made three kinds) is :mod:`.transport`'s.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mnn_edge.artifact import METADATA_KEY, ModelMetadata
from mnn_edge.errors import MnnEdgeError
from mnn_edge.runtime.base import InputSpec, Runner
from mnn_edge.runtime.remote.transport import TRANSPORTS, V2_TO_NUMPY, Refused, TimedOut, Unreachable
from mnn_edge.runtime.remote.url import ModelURL, parse_model_url


class RemoteRunner(Runner):
    """``open_runner("grpc://HOST:PORT/MODEL")``: the same named outputs as a local runner."""

    backend = "remote"

    def __init__(self, url: str, timeout: float | None = None):
        # No Runner.__init__: it would make a Path of the URL (and fold its '//').
        self.url = parse_model_url(url)
        if timeout is not None:
            if not timeout > 0:
                raise MnnEdgeError(f"timeout must be > 0 seconds, got {timeout}")
            self.url = ModelURL(self.url.scheme, self.url.host, self.url.port, self.url.model, float(timeout))
        self.path = str(self.url)
        self.device = self.url.server
        self._transport = TRANSPORTS[self.url.scheme](self.url)
        try:
            self._guard(self._transport.live)
            self._describe_model()
        except BaseException:
            self.close()
            raise

    def _guard(self, fn: Callable, *args):
        """Run one client call; what went wrong becomes one line naming the URL."""
        try:
            return fn(*args)
        except Unreachable as e:
            raise MnnEdgeError(f"cannot reach the inference server at {self.url.server} ({e}): is it running, "
                               "and are host and port right?") from None
        except TimedOut:
            raise MnnEdgeError(f"{self.url} did not answer within the {self.url.timeout:g} s timeout "
                               "(a busy or stalled server; raise it with ?timeout=SECONDS in the URL)") from None

    def _describe_model(self) -> None:
        model = self.url.model
        try:
            inputs, outputs, params = self._guard(self._transport.metadata, model)
        except Refused as e:
            raise MnnEdgeError(f"{self.url.server} has no model '{model}' ({e}); {self._served_models()}") from None
        limit = int(params["max_batch"]) if str(params.get("max_batch", "")).isdigit() else None  # mnn-serve
        if METADATA_KEY not in params:  # Triton: the metadata is in the model config
            try:
                config = self._guard(self._transport.config, model)
            except Refused:
                config = None
            if config is not None and METADATA_KEY in config[1]:
                params, limit = config[1], max(config[0], 1)  # 0 = no batching: one item per request
        if not params.get(METADATA_KEY):
            raise MnnEdgeError(f"{self.url} carries no mnn-edge metadata (parameters[\"{METADATA_KEY}\"]): serve "
                               "an mnn-export --triton-repo repository, or the artifact with mnn-serve")
        self.metadata = ModelMetadata.from_json(params[METADATA_KEY])
        self.input_spec = self._input_spec(inputs, limit)
        self._outputs = [name for name, _, _ in outputs]
        missing = sorted(set(self.metadata.outputs) - set(self._outputs))
        if missing:
            raise MnnEdgeError(f"{self.url}: its metadata lists output(s) {', '.join(missing)} that the server does "
                               "not return: the repository does not match the artifact; rewrite it")

    def _input_spec(self, inputs: list, max_batch: int | None) -> InputSpec:
        meta = self.metadata
        want = [3, meta.input_size, meta.input_size]
        if len(inputs) != 1 or inputs[0][0] != meta.input_name or inputs[0][2][1:] != want \
                or inputs[0][1] not in V2_TO_NUMPY:
            found = ", ".join(f"{n} {s} {d}" for n, d, s in inputs)
            raise MnnEdgeError(f"{self.url}: its metadata describes input '{meta.input_name}' "
                               f"(N, {', '.join(map(str, want))}), the server's model takes {found}: not the "
                               "artifact it claims to be")
        return InputSpec(meta.input_name, (None, *want), np.dtype(V2_TO_NUMPY[inputs[0][1]]), max_batch=max_batch)

    def _served_models(self) -> str:
        try:
            names = self._guard(self._transport.models)
        except (Refused, MnnEdgeError):
            return "the server does not list its models"
        return f"it serves: {', '.join(names)}" if names else "it serves no model"

    def _infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        try:
            return self._guard(self._transport.infer, self.url.model, self.input_spec.name, batch, self._outputs)
        except Refused as e:
            raise MnnEdgeError(f"{self.url} refused the request: {e}") from None

    def describe(self) -> str:
        return f"{super().describe()} at {self.url}"

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
