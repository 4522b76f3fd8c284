"""mnn-serve under load: throughput and latency vs concurrent clients, adaptive batching on and off.

    python bench/serve_load.py --artifact bench/results/quantization/export/pose.onnx

Starts ``mnn-serve`` (a subprocess, loopback, free ports) once with adaptive batching and once
with ``--no-batching``; for each of 1, 2, 4, 8 concurrent clients, every client (a thread with its
own gRPC remote runner, as separate cameras would be) sends ``--requests`` requests of
``--faces`` crop(s) back to back. Reports requests/s, faces/s and the client-side p50/p99 latency
per request; writes JSON (``--json``) and prints a Markdown table. About 2-3 minutes on a loaded
2-core machine with the defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from mnn_edge.artifact.triton import model_name_for
from mnn_edge.bench.machine import machine_record
from mnn_edge.runtime import open_runner
from mnn_edge.runtime.inputs import random_input
from mnn_edge.serve.ports import free_ports

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ARTIFACT = ROOT / "bench/results/quantization/export/pose.onnx"


def start_server(artifact: Path, batching: bool, extra: list[str]) -> tuple[subprocess.Popen, str]:
    http_port, grpc_port = free_ports(2)
    cmd = [sys.executable, "-m", "mnn_edge.serve.cli", str(artifact), "--http-port", str(http_port),
           "--grpc-port", str(grpc_port), *extra, *([] if batching else ["--no-batching"])]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"grpc://127.0.0.1:{grpc_port}/{model_name_for(artifact)}"  # as mnn-serve names it: pose_int8
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            open_runner(url + "?timeout=5").close()
            return proc, url
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"mnn-serve did not start: {proc.stderr.read()[-2000:] if proc.stderr else ''}")


def load(url: str, clients: int, requests: int, faces: int) -> dict:
    """``clients`` threads x ``requests`` back-to-back requests; latency per request, client side."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    runners = [open_runner(url + "?timeout=120") for _ in range(clients)]  # connected before the clock starts
    for r in runners:
        r.infer(random_input(faces, seed=0))  # warm each connection

    def client(c: int) -> None:
        x = random_input(faces, seed=c)
        for _ in range(requests):
            t = time.perf_counter()
            try:
                runners[c].infer(x)
            except Exception as e:  # noqa: BLE001 - counted and reported
                with lock:
                    errors.append(str(e))
                continue
            with lock:
                latencies.append((time.perf_counter() - t) * 1000)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    for r in runners:
        r.close()
    done = len(latencies)
    return {"clients": clients, "requests": clients * requests, "answered": done, "errors": len(errors),
            "first_error": errors[0] if errors else "", "wall_s": round(wall, 3),
            "requests_per_s": round(done / wall, 2), "faces_per_s": round(done * faces / wall, 2),
            "p50_ms": round(float(np.percentile(latencies, 50)), 1) if latencies else None,
            "p99_ms": round(float(np.percentile(latencies, 99)), 1) if latencies else None}


def markdown(rows: list[dict]) -> str:
    lines = ["| batching | clients | requests | req/s | faces/s | p50 ms | p99 ms | errors |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['batching']} | {r['clients']} | {r['answered']}/{r['requests']} | {r['requests_per_s']} "
                     f"| {r['faces_per_s']} | {r['p50_ms']} | {r['p99_ms']} | {r['errors']} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--artifact", type=Path, default=DEFAULT_ARTIFACT, help="ONNX artifact to serve")
    ap.add_argument("--clients", default="1,2,4,8", help="concurrent client counts")
    ap.add_argument("--requests", type=int, default=6, help="requests per client per run")
    ap.add_argument("--faces", type=int, default=1, help="crops per request (1: one face per camera frame)")
    ap.add_argument("--json", type=Path, default=ROOT / "bench/results/serve_load.json", help="results file")
    ap.add_argument("--serve-args", default="", help="extra mnn-serve flags, e.g. '--max-batch-time-ms 10'")
    args = ap.parse_args()
    if not args.artifact.is_file():
        raise SystemExit(f"{args.artifact} not found: pass --artifact (a pose ONNX from mnn-export)")
    counts = [int(c) for c in args.clients.split(",")]
    rows = []
    for batching in (True, False):
        proc, url = start_server(args.artifact, batching, args.serve_args.split())
        try:
            for n in counts:
                row = {"batching": "on" if batching else "off", **load(url, n, args.requests, args.faces)}
                print(json.dumps(row), file=sys.stderr, flush=True)
                rows.append(row)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    result = {"artifact": str(args.artifact), "faces_per_request": args.faces, "requests_per_client": args.requests,
              "transport": "grpc", "serve_args": args.serve_args, "machine": machine_record(),
              "omp_num_threads": os.environ.get("OMP_NUM_THREADS", ""), "rows": rows}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(rows))
    print(f"wrote {args.json}")
    return 0 if all(r["errors"] == 0 and r["answered"] == r["requests"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
