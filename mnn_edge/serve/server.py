"""The ``mnn-serve`` server: its settings, the message-size limits, and MLServer started around
:class:`mnn_edge.serve.model.RunnerModel`. Everything a user can get wrong (artifacts, ports) is
checked before MLServer is imported, so a bad one is one line, not a server that starts and dies.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from mnn_edge.artifact import INPUT_SIZE
from mnn_edge.serve.ports import check_port_free

# A request carries at most --max-request-batch crops; gRPC refuses larger messages before they are
# read (gRPC's own default, 4 MiB, would be 5 crops).
CROP_BYTES = 3 * INPUT_SIZE * INPUT_SIZE * 4  # one float32 crop


def grpc_max_message(request_rows: int) -> int:
    return request_rows * CROP_BYTES + (1 << 20)  # + 1 MiB for the envelope


def http_max_body(request_rows: int) -> int:
    """JSON spells a float32 in up to ~16 characters (4 bytes raw): room for that, no more."""
    return 4 * request_rows * CROP_BYTES + (1 << 20)
# Shutdown: MLServer's own handlers stop it on these; ours also note which one, to say so.
STOP_SIGNALS = ("SIGINT", "SIGTERM")


@dataclass(frozen=True)
class ServeConfig:
    artifacts: tuple[Path, ...]
    names: tuple[str, ...]  # one model name per artifact
    host: str
    http_port: int
    grpc_port: int
    max_batch_size: int  # adaptive batching: crops merged into one call; <= 1 = off
    max_batch_time: float  # seconds a request waits for others to fill a batch
    max_request_batch: int  # crops one request may carry
    upload_timeout: float  # seconds an HTTP upload may stall
    device: str
    threads: int


def check_artifacts(cfg: ServeConfig) -> list[str]:
    """Open every artifact once, as the server will; one line per model, or the first failure."""
    from mnn_edge.serve.artifacts import describe_artifact

    return [describe_artifact(path, name, cfg.device, cfg.threads) for path, name in zip(cfg.artifacts, cfg.names)]


def model_settings(cfg: ServeConfig) -> list[dict]:
    # MLServer's own adaptive batching stays off (max_batch_size 1): it splits merged answers by
    # the shapes clients declare; RunnerModel batches checked requests itself.
    extra = {"device": cfg.device, "threads": cfg.threads, "request_rows": cfg.max_request_batch,
             "batch_rows": cfg.max_batch_size, "batch_wait_s": cfg.max_batch_time}
    return [{"name": name, "implementation": "mnn_edge.serve.model.RunnerModel", "max_batch_size": 1,
             "max_batch_time": 0.0, "parameters": {"uri": str(path.resolve()), "extra": extra}}
            for path, name in zip(cfg.artifacts, cfg.names)]


async def serve(cfg: ServeConfig) -> int:
    """Run MLServer until a signal; non-zero if it stopped for another reason (a model failed to load)."""
    import asyncio
    import logging
    import signal

    from mlserver import MLServer
    from mlserver.settings import ModelSettings, Settings

    models = model_settings(cfg)
    settings = Settings(host=cfg.host, http_port=cfg.http_port, grpc_port=cfg.grpc_port, parallel_workers=0,
                        debug=False, metrics_endpoint=None,
                        grpc_max_message_length=grpc_max_message(cfg.max_request_batch),
                        model_repository_implementation="mnn_edge.serve.model.ArtifactRepository",
                        model_repository_implementation_args={"models": models})
    server = MLServer(settings)
    from mnn_edge.serve.http_guard import RequestGuard

    # in front of MLServer's REST app: bounded bodies, uploads that finish, no binary tensors
    server._rest_server._app.add_middleware(RequestGuard, max_body=http_max_body(cfg.max_request_batch),
                                            idle_s=cfg.upload_timeout, total_s=4 * cfg.upload_timeout)
    stopped_by: list[str] = []
    loop = asyncio.get_running_loop()
    for name in STOP_SIGNALS:
        sig = getattr(signal, name)
        # Replaces MLServer's handler for this signal with one that notes it, then does the same.
        loop.add_signal_handler(sig, lambda s=sig, n=name: (stopped_by.append(n),
                                                            asyncio.create_task(server.stop(sig=s))))
    await server.start([ModelSettings.model_validate(dict(m)) for m in models])
    # The servers have stopped; asyncio.run now cancels what is left, and uvicorn's lifespan task
    # logs that cancellation as an ERROR with a CancelledError traceback after our "stopped" line.
    logging.getLogger("uvicorn.error").disabled = True
    if stopped_by:
        print(f"mnn-serve: stopped ({stopped_by[0]})", file=sys.stderr)
        return 0
    print("error: the server stopped without a signal: a model failed to load (see the log above)", file=sys.stderr)
    return 1


def run_server(cfg: ServeConfig) -> int:
    """Check ports and artifacts (one line each if wrong), say where it serves, then serve until a signal."""
    check_port_free(cfg.host, cfg.http_port, "--http-port")
    check_port_free(cfg.host, cfg.grpc_port, "--grpc-port")
    for line in check_artifacts(cfg):
        print(line)
    batching = (f"adaptive batching: up to {cfg.max_batch_size} crops, {cfg.max_batch_time * 1000:g} ms"
                if cfg.max_batch_size > 1 else "adaptive batching off")
    print(f"serving on grpc://{cfg.host}:{cfg.grpc_port}/MODEL and http://{cfg.host}:{cfg.http_port}/MODEL "
          f"({batching}); Ctrl-C stops", flush=True)
    import asyncio

    return asyncio.run(serve(cfg))
