"""The two ways to a KServe V2 server behind one interface: gRPC and HTTP through ``tritonclient``.

A transport answers the few calls the runner needs (live, model metadata, model config, the
served models, infer) and turns each client library's failures into three: :class:`Unreachable`
(nothing answered), :class:`TimedOut` and :class:`Refused` (the server's own error). tritonclient
is imported when a transport is made, i.e. when a model URL is opened.

``tritonclient``'s gRPC schema is Triton's, whose ``ModelMetadataResponse`` lacks the
``parameters`` field (6) that MLServer's schema has; protobuf keeps it as an unknown field, and
:func:`grpc_metadata_parameters` reads it from there (same wire format as any V2 parameters map).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np

from mnn_edge.errors import MissingDependencyError
from mnn_edge.runtime.remote.url import ModelURL

# V2 datatypes <-> numpy (the ones an mnn-edge artifact can have at its boundary)
V2_TO_NUMPY = {"FP32": np.float32, "FP16": np.float16, "FP64": np.float64, "INT32": np.int32, "INT64": np.int64,
               "INT8": np.int8, "UINT8": np.uint8, "BOOL": np.bool_}
NUMPY_TO_V2 = {np.dtype(v): k for k, v in V2_TO_NUMPY.items()}
_METADATA_PARAMETERS_FIELD = 6  # ModelMetadataResponse.parameters in the V2 / MLServer schema


class Unreachable(Exception):
    """The server did not answer at all (refused, no route, name not resolved)."""


class TimedOut(Exception):
    """The server did not answer within the timeout."""


class Refused(Exception):
    """The server answered with an error (unknown model, bad request, ...); the message is its own."""


class GrpcTransport:
    """V2 over gRPC (``tritonclient.grpc``)."""

    def __init__(self, url: ModelURL):
        try:
            import tritonclient.grpc as tc
            from tritonclient.grpc import service_pb2
            from tritonclient.utils import InferenceServerException
        except ImportError as e:
            raise MissingDependencyError("tritonclient[grpc]", "serve", f"to open {url.scheme}:// model URLs") from e
        self._tc, self._pb, self._exc, self._t = tc, service_pb2, InferenceServerException, url.timeout
        self._client = tc.InferenceServerClient(url.address)

    def call(self, fn: Callable, *args, **kwargs) -> Any:
        try:
            return fn(*args, client_timeout=self._t, **kwargs)
        except self._exc as e:
            status = str(e.status() or "")
            if status.endswith("UNAVAILABLE") and "unknown model" not in str(e.message()):
                # gRPC's detail ends with the reason: "...: Connection refused", "...: Domain name not found"
                raise Unreachable(str(e.message()).rsplit(": ", 1)[-1]) from None
            if status.endswith("DEADLINE_EXCEEDED"):
                raise TimedOut() from None
            raise Refused(f"{status.split('.')[-1]}: {e.message()}") from None

    def live(self) -> None:
        self.call(self._client.is_server_live)

    def metadata(self, model: str) -> tuple[list, list, dict]:
        m = self.call(self._client.get_model_metadata, model)
        tensors = [[(t.name, t.datatype, list(t.shape)) for t in ts] for ts in (m.inputs, m.outputs)]
        return tensors[0], tensors[1], grpc_metadata_parameters(m, self._pb)

    def config(self, model: str) -> tuple[int, dict] | None:
        try:
            c = self.call(self._client.get_model_config, model).config
        except Refused:  # MLServer: UNIMPLEMENTED
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


def grpc_metadata_parameters(message: Any, service_pb2: Any) -> dict:
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


class HttpTransport:
    """V2 over HTTP/JSON (``tritonclient.http``); binary tensors only where the server offers them."""

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

    def call(self, fn: Callable, *args, **kwargs) -> Any:
        import gevent

        try:
            return fn(*args, **kwargs)
        except self._exc as e:
            raise Refused(f"HTTP {e.status()}: {e.message()}") from None
        except (TimeoutError, gevent.Timeout):
            raise TimedOut() from None
        except OSError as e:  # refused, unreachable, unknown host
            raise Unreachable(e.strerror or str(e)) from None
        except Exception as e:  # noqa: BLE001 - geventhttpclient's parse errors, a non-JSON body, ...
            # something answered, but not an inference server speaking HTTP/JSON (or it died mid-reply)
            raise Unreachable(f"not a V2 inference server's answer: {type(e).__name__}: "
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
        except Refused:  # MLServer: no config endpoint
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
            raise Refused(str(e)) from None

    def infer(self, model: str, name: str, batch: np.ndarray, outputs: list[str]) -> dict[str, np.ndarray]:
        inp = self._tc.InferInput(name, list(batch.shape), NUMPY_TO_V2[batch.dtype])
        inp.set_data_from_numpy(batch, binary_data=self._binary)
        wanted = [self._tc.InferRequestedOutput(o, binary_data=self._binary) for o in outputs]
        res = self.call(self._client.infer, model, [inp], outputs=wanted)
        return {o: res.as_numpy(o) for o in outputs}

    def close(self) -> None:
        self._client.close()


TRANSPORTS = {"grpc": GrpcTransport, "http": HttpTransport}
