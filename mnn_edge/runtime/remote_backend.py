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

``tritonclient``'s gRPC schema is Triton's, whose ``ModelMetadataResponse`` lacks the
``parameters`` field (6) that MLServer's schema has; protobuf keeps it as an unknown field, and
:func:`_grpc_metadata_parameters` reads it from there (same wire format as any V2 parameters map).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np

from mnn_edge.artifact import METADATA_KEY, ModelMetadata
from mnn_edge.errors import MissingDependencyError, MnnEdgeError
from mnn_edge.runtime.base import InputSpec, Runner
from mnn_edge.runtime.remote import ModelURL, parse_model_url

# V2 datatypes <-> numpy (the ones an mnn-edge artifact can have at its boundary)
V2_TO_NUMPY = {"FP32": np.float32, "FP16": np.float16, "FP64": np.float64, "INT32": np.int32, "INT64": np.int64,
               "INT8": np.int8, "UINT8": np.uint8, "BOOL": np.bool_}
NUMPY_TO_V2 = {np.dtype(v): k for k, v in V2_TO_NUMPY.items()}
_METADATA_PARAMETERS_FIELD = 6  # ModelMetadataResponse.parameters in the V2 / MLServer schema


class _Unreachable(Exception):
    """The server did not answer at all (refused, no route, name not resolved)."""


class _TimedOut(Exception):
    """The server did not answer within the timeout."""


class _Refused(Exception):
    """The server answered with an error (unknown model, bad request, ...); the message is its own."""


class _GrpcTransport:
    def __init__(self, url: ModelURL):
        try:
            import tritonclient.grpc as tc
            from tritonclient.grpc import service_pb2
            from tritonclient.utils import InferenceServerException
        except ImportError as e:
            raise MissingDependencyError("tritonclient[grpc]", "serve", f"to open {url.scheme}:// model URLs") from e
        self._tc, self._pb, self._exc, self._t = tc, service_pb2, InferenceServerException, url.timeout
        self._client = tc.InferenceServerClient(url.address)

    def call(self, fn: Callable, *args, **kwargs):
        try:
            return fn(*args, client_timeout=self._t, **kwargs)
        except self._exc as e:
            status = str(e.status() or "")
            if status.endswith("UNAVAILABLE") and "unknown model" not in str(e.message()):
                # gRPC's detail ends with the reason: "...: Connection refused", "...: Domain name not found"
                raise _Unreachable(str(e.message()).rsplit(": ", 1)[-1]) from None
            if status.endswith("DEADLINE_EXCEEDED"):
                raise _TimedOut() from None
            raise _Refused(f"{status.split('.')[-1]}: {e.message()}") from None

    def live(self) -> None:
        self.call(self._client.is_server_live)

    def metadata(self, model: str) -> tuple[list, list, dict]:
        m = self.call(self._client.get_model_metadata, model)
        tensors = [[(t.name, t.datatype, list(t.shape)) for t in ts] for ts in (m.inputs, m.outputs)]
        return tensors[0], tensors[1], _grpc_metadata_parameters(m, self._pb)

    def config(self, model: str) -> tuple[int, dict] | None:
        try:
            c = self.call(self._client.get_model_config, model).config
        except _Refused:  # MLServer: UNIMPLEMENTED
            return None
        return int(c.max_batch_size), {k: v.string_value for k, v in c.parameters.items()}

    def models(self) -> list[str]:
        return sorted(m.name for m in self.call(self._client.get_model_repository_index).models)

    def infer(self, model: str, name: str, batch: np.ndarray, outputs: list[str]) -> dict[str, np.ndarray]:
        inp = self._tc.InferInput(name, list(batch.shape), NUMPY_TO_V2[batch.dtype])
        inp.set_data_from_numpy(batch)
        res = self.call(self._client.infer, model, [inp], outputs=[self._tc.InferRequestedOutput(o) for o in outputs])
        return {o: res.as_numpy(o) for o in outputs}

    def close(self) -> None:
        self._client.close()


def _grpc_metadata_parameters(message, service_pb2) -> dict:
    """``parameters`` of a V2 ModelMetadataResponse that Triton's schema does not declare: each map
    entry is an unknown field 6 whose bytes parse as any V2 ``map<string, InferParameter>`` entry."""
    from google.protobuf.unknown_fields import UnknownFieldSet

    out = {}
    for field in UnknownFieldSet(message):
        if field.field_number == _METADATA_PARAMETERS_FIELD and isinstance(field.data, bytes):
            entry = service_pb2.ModelInferRequest.ParametersEntry.FromString(field.data)
            kind = entry.value.WhichOneof("parameter_choice")
            if kind is not None:
                out[entry.key] = getattr(entry.value, kind)
    return out


class _HttpTransport:
    def __init__(self, url: ModelURL):
        try:
            import tritonclient.http as tc
            from tritonclient.utils import InferenceServerException
        except ImportError as e:
            raise MissingDependencyError("tritonclient[http]", "serve", f"to open {url.scheme}:// model URLs") from e
        self._tc, self._exc, self._address, self._timeout = tc, InferenceServerException, url.address, url.timeout
        self._client = tc.InferenceServerClient(url.address, connection_timeout=url.timeout,
                                                network_timeout=url.timeout)
        self._binary = False  # Triton's binary tensor extension; MLServer takes JSON lists only

    def call(self, fn: Callable, *args, **kwargs):
        import gevent

        try:
            return fn(*args, **kwargs)
        except self._exc as e:
            raise _Refused(f"HTTP {e.status()}: {e.message()}") from None
        except (TimeoutError, gevent.Timeout):
            raise _TimedOut() from None
        except OSError as e:  # refused, unreachable, unknown host
            raise _Unreachable(e.strerror or str(e)) from None
        except Exception as e:  # noqa: BLE001 - geventhttpclient's parse errors, a non-JSON body, ...
            # something answered, but not an inference server speaking HTTP/JSON (or it died mid-reply)
            raise _Unreachable(f"not a V2 inference server's answer: {type(e).__name__}: "
                               f"{str(e).splitlines()[0][:120] if str(e) else 'no detail'}") from None

    def live(self) -> None:
        self.call(self._client.is_server_live)
        extensions = self.call(self._client.get_server_metadata).get("extensions", [])
        self._binary = "binary_tensor_data" in extensions

    def metadata(self, model: str) -> tuple[list, list, dict]:
        m = self.call(self._client.get_model_metadata, model)
        tensors = [[(t["name"], t["datatype"], list(t["shape"])) for t in m.get(k, [])] for k in ("inputs", "outputs")]
        return tensors[0], tensors[1], dict(m.get("parameters") or {})

    def config(self, model: str) -> tuple[int, dict] | None:
        try:
            c = self.call(self._client.get_model_config, model)
        except _Refused:  # MLServer: no config endpoint
            return None
        params = {k: v.get("string_value", "") for k, v in (c.get("parameters") or {}).items()}
        return int(c.get("max_batch_size", 0)), params

    def models(self) -> list[str]:
        # tritonclient posts an empty body, which MLServer refuses (it wants a JSON object); Triton
        # and MLServer both take "{}".
        import urllib.request

        req = urllib.request.Request(f"http://{self._address}/v2/repository/index", data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self._timeout) as resp:
                return sorted(m["name"] for m in json.loads(resp.read()))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise _Refused(str(e)) from None

    def infer(self, model: str, name: str, batch: np.ndarray, outputs: list[str]) -> dict[str, np.ndarray]:
        inp = self._tc.InferInput(name, list(batch.shape), NUMPY_TO_V2[batch.dtype])
        inp.set_data_from_numpy(batch, binary_data=self._binary)
        wanted = [self._tc.InferRequestedOutput(o, binary_data=self._binary) for o in outputs]
        res = self.call(self._client.infer, model, [inp], outputs=wanted)
        return {o: res.as_numpy(o) for o in outputs}

    def close(self) -> None:
        self._client.close()


TRANSPORTS = {"grpc": _GrpcTransport, "http": _HttpTransport}


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
        except _Unreachable as e:
            raise MnnEdgeError(f"cannot reach the inference server at {self.url.server} ({e}): is it running, "
                               "and are host and port right?") from None
        except _TimedOut:
            raise MnnEdgeError(f"{self.url} did not answer within the {self.url.timeout:g} s timeout "
                               "(a busy or stalled server; raise it with ?timeout=SECONDS in the URL)") from None

    def _describe_model(self) -> None:
        model = self.url.model
        try:
            inputs, outputs, params = self._guard(self._transport.metadata, model)
        except _Refused as e:
            raise MnnEdgeError(f"{self.url.server} has no model '{model}' ({e}); {self._served_models()}") from None
        limit = int(params["max_batch"]) if str(params.get("max_batch", "")).isdigit() else None  # mnn-serve
        if METADATA_KEY not in params:  # Triton: the metadata is in the model config
            try:
                config = self._guard(self._transport.config, model)
            except _Refused:
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
        except (_Refused, MnnEdgeError):
            return "the server does not list its models"
        return f"it serves: {', '.join(names)}" if names else "it serves no model"

    def _infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        try:
            return self._guard(self._transport.infer, self.url.model, self.input_spec.name, batch, self._outputs)
        except _Refused as e:
            raise MnnEdgeError(f"{self.url} refused the request: {e}") from None

    def describe(self) -> str:
        return f"{super().describe()} at {self.url}"

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
