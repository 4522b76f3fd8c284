"""``mnn-serve ARTIFACT...``: the project's runners behind the KServe V2 protocol (HTTP and gRPC) on
MLServer, with MLServer's adaptive batching. Clients: ``open_runner("grpc://HOST:PORT/MODEL")``,
so ``mnn-run --engine``, ``mnn-eval --artifact`` and ``mnn-bench`` take the URL unchanged.

Everything a user can get wrong (artifacts, names, ports) is checked before MLServer is imported:
the artifacts are opened once here, and the ports bound once, so a bad one is one line, not a
server that starts and dies.
"""

from __future__ import annotations

import argparse
import errno
import math
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from mnn_edge.artifact import INPUT_SIZE
from mnn_edge.artifact.triton import MODEL_NAME, model_name_for
from mnn_edge.cli_util import run_cli
from mnn_edge.errors import MnnEdgeError

EPILOG = """examples:
  mnn-serve export/pose.onnx                                   # grpc://127.0.0.1:8081/pose, http://...:8080/pose
  mnn-serve export/pose.onnx export/mnn.int8.onnx --grpc-port 9001 --http-port 9000
  mnn-serve engines/mnn.fp16.plan --name mnn --host 0.0.0.0    # reachable from other machines
  mnn-run --engine grpc://127.0.0.1:8081/pose --video clip.mp4 # a client
"""
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mnn-serve",
        description="Serve artifacts (.onnx, .pt, .plan: anything mnn-run opens) over the KServe V2 inference "
                    "protocol, HTTP and gRPC, on MLServer, with adaptive batching (concurrent requests merged into "
                    "one model call). Every model's metadata carries the artifact's mnn-edge metadata, so "
                    "grpc://HOST:PORT/MODEL URLs work wherever an artifact path does. Ctrl-C or SIGTERM stops it.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("artifacts", nargs="+", type=Path, metavar="ARTIFACT", help="artifacts to serve")
    p.add_argument("--name", action="append", default=None, metavar="NAME",
                   help="model name, once per artifact in order (default: from the file name, as --triton-repo "
                        "names models: pose.int8.onnx -> pose_int8)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--http-port", type=int, default=8080, help="V2 REST port")
    p.add_argument("--grpc-port", type=int, default=8081, help="V2 gRPC port")
    b = p.add_argument_group("adaptive batching", "Every request is checked on its own (shape, datatype, declared "
                             "vs carried size, finite values) before it may be merged; a bad one gets a 400 naming "
                             "its fault and never touches another client's answer.")
    b.add_argument("--max-batch-size", type=int, default=8,
                   help="most crops merged from concurrent requests into one model call (default: 8)")
    b.add_argument("--max-batch-time-ms", type=float, default=0.0,
                   help="longest a request waits for others to fill a batch, in ms. 0 (default): none; requests "
                        "that arrive while a call runs are merged into the next one (measured here: a lone "
                        "client 25 ms p50 instead of 33 with 5 ms, 4 clients 49 faces/s instead of 43)")
    b.add_argument("--no-batching", action="store_true", help="one model call per request")
    b.add_argument("--max-request-batch", type=int, default=64,
                   help="most crops one request may carry (bounds memory and the gRPC message size; clients "
                        "using grpc:// or http:// URLs split to it on their own) (default: 64)")
    p.add_argument("--upload-timeout", type=float, default=30.0,
                   help="an HTTP request body that stalls this many seconds (or takes 4x as long in all) is "
                        "answered 408 and dropped (default: 30)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="device for .onnx and .pt")
    p.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0: its default)")
    return p


def config_from_args(args: argparse.Namespace) -> ServeConfig:
    names = tuple(args.name) if args.name else tuple(model_name_for(a) for a in args.artifacts)
    if len(names) != len(args.artifacts):
        raise MnnEdgeError(f"give --name once per artifact ({len(args.artifacts)}), or not at all; got {len(names)}")
    bad = [n for n in names if not MODEL_NAME.match(n)]
    if bad:
        raise MnnEdgeError(f"'{bad[0]}' is not a usable model name (letters, digits, _ . - only)")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise MnnEdgeError(f"two artifacts would both be served as '{twice[0]}': name them with --name")
    for flag, port in (("--http-port", args.http_port), ("--grpc-port", args.grpc_port)):
        if not 1 <= port <= 65535:
            raise MnnEdgeError(f"{flag} must be between 1 and 65535, got {port}")
    if args.http_port == args.grpc_port:
        raise MnnEdgeError(f"--http-port and --grpc-port are both {args.http_port}: give them different ports")
    if not args.no_batching and not (2 <= args.max_batch_size <= 256 and 0 <= args.max_batch_time_ms <= 1000):
        raise MnnEdgeError("--max-batch-size must be 2..256 and --max-batch-time-ms in [0, 1000] "
                           "(or pass --no-batching)")
    if not (math.isfinite(args.upload_timeout) and 0 < args.upload_timeout <= 3600):
        raise MnnEdgeError(f"--upload-timeout must be in (0, 3600] seconds, got {args.upload_timeout}")
    if not 1 <= args.max_request_batch <= 1024:
        raise MnnEdgeError(f"--max-request-batch must be 1..1024 crops, got {args.max_request_batch}")
    if args.threads < 0:
        raise MnnEdgeError(f"--threads must be >= 0, got {args.threads}")
    return ServeConfig(artifacts=tuple(args.artifacts), names=names, host=args.host, http_port=args.http_port,
                       grpc_port=args.grpc_port, max_batch_size=0 if args.no_batching else args.max_batch_size,
                       max_batch_time=0.0 if args.no_batching else args.max_batch_time_ms / 1000.0,
                       max_request_batch=args.max_request_batch, upload_timeout=args.upload_timeout,
                       device=args.device, threads=args.threads)


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct ports free on ``host`` right now (the kernel's pick), for benchmarks and tests."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind((host, 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def check_port_free(host: str, port: int, flag: str) -> None:
    """Bind once and let go: a port in use is one line now, not a server that dies while starting."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise MnnEdgeError(f"--host {host}: not an address of this machine ({e.strerror})") from e
    family, _, _, _, addr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        # As the servers do: connections of a previous run in TIME_WAIT do not make a port busy.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise MnnEdgeError(f"port {port} on {host} is already in use (another server?): pick a free one "
                                   f"with {flag}") from e
            raise MnnEdgeError(f"cannot listen on {host}:{port} ({e.strerror}): check --host and {flag}") from e


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


def main(argv: list[str] | None = None) -> int:
    cfg = config_from_args(build_parser().parse_args(argv))
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


def entry() -> int:
    return run_cli(main)


if __name__ == "__main__":
    raise SystemExit(entry())
