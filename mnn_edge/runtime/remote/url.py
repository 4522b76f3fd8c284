"""Model URLs: ``grpc://HOST:PORT/MODEL`` and ``http://HOST:PORT/MODEL``, parsed in one place.

A URL names one model on a server speaking the KServe V2 inference protocol (NVIDIA Triton,
``mnn-serve``, KServe). ``?timeout=SECONDS`` sets how long the client waits for any answer. The
port defaults to Triton's (8001 gRPC, 8000 HTTP). Nothing here imports a client library.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from mnn_edge.errors import MnnEdgeError

DEFAULT_PORTS = {"grpc": 8001, "http": 8000}  # Triton's defaults; mnn-serve's are 8081 / 8080
DEFAULT_TIMEOUT_S = 30.0  # a CPU server under load answers a batch of 8 well within this
USAGE = "expected grpc://HOST:PORT/MODEL or http://HOST:PORT/MODEL, optionally ?timeout=SECONDS"
MODEL_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class ModelURL:
    scheme: str  # grpc | http
    host: str
    port: int
    model: str
    timeout: float = DEFAULT_TIMEOUT_S  # seconds

    @property
    def address(self) -> str:
        """``host:port`` as the client libraries take it (IPv6 in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def server(self) -> str:
        return f"{self.scheme}://{self.address}"

    def __str__(self) -> str:
        return f"{self.server}/{self.model}"


def is_model_url(value: object) -> bool:
    """True for a ``grpc://`` or ``http://`` string (a ``Path`` never is: it folds ``//``)."""
    return isinstance(value, str) and value.lower().startswith(tuple(f"{s}://" for s in DEFAULT_PORTS))


def parse_model_url(text: str) -> ModelURL:
    """``grpc://127.0.0.1:8001/pose?timeout=5`` -> ModelURL; anything malformed is one clear error."""
    if not is_model_url(text):
        raise MnnEdgeError(f"'{text}' is not a model URL: {USAGE}")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError as e:  # a port that is not a number or out of range
        raise MnnEdgeError(f"'{text}': bad port ({e}); {USAGE}") from e
    if port == 0:
        raise MnnEdgeError(f"'{text}': port 0 is not a server's port; {USAGE}")
    port = port or DEFAULT_PORTS[scheme]
    model = parts.path.strip("/")
    if not parts.hostname or not model or not MODEL_NAME.match(model):
        raise MnnEdgeError(f"'{text}' names no server or no model: {USAGE}")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"timeout"})
    if unknown:
        raise MnnEdgeError(f"'{text}': unknown URL option(s) {', '.join(unknown)}; {USAGE}")
    timeout = DEFAULT_TIMEOUT_S
    if "timeout" in query:
        try:
            timeout = float(query["timeout"][-1])
        except ValueError:
            timeout = -1.0
        if not timeout > 0:
            raise MnnEdgeError(f"'{text}': timeout must be a number of seconds > 0, got '{query['timeout'][-1]}'")
    return ModelURL(scheme, parts.hostname, port, model, timeout)


def artifact_arg(text: str) -> Path | str:
    """argparse ``type`` for an artifact: a model URL stays a string (``Path`` would turn
    ``grpc://h:1/m`` into ``grpc:/h:1/m``), anything else is a ``Path``; another URL scheme is refused
    here, in one line (it would otherwise be read as a file named ``https:/...``)."""
    if is_model_url(text):
        return text
    scheme = text.split("://", 1)[0] if "://" in text else ""
    if scheme and scheme.isalnum():
        raise MnnEdgeError(f"'{text}': {scheme}:// is not a model source; give a local file (.onnx, .pt, .plan) "
                           f"or a served model: {USAGE}")
    return Path(text)
