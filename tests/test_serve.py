"""mnn-serve (MLServer) and the remote runner, on the loopback: one server subprocess with a random-
weight pose.onnx for the module; remote outputs against the local runner's over gRPC and HTTP, a
bounded concurrent load, and every client-side failure as one MnnEdgeError line.

mlserver is never imported here: its protobuf names clash with tritonclient.grpc's in one process
(both register ``inference.*``), so the server always runs in its own process, as in deployment.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc,http] (the serve/dev extra) is the V2 client")
pytestmark = pytest.mark.skipif(importlib.util.find_spec("mlserver") is None,
                                reason="mlserver (the serve/dev extra) runs mnn-serve")

from mnn_edge.cli_util import run_cli  # noqa: E402
from mnn_edge.errors import InputError, MnnEdgeError  # noqa: E402
from mnn_edge.runtime import backend_for, open_runner  # noqa: E402
from mnn_edge.runtime.compare import PARITY_MAX_ABS  # noqa: E402
from mnn_edge.runtime.inputs import random_input  # noqa: E402
from mnn_edge.runtime.remote.url import DEFAULT_TIMEOUT_S, ModelURL, artifact_arg, parse_model_url  # noqa: E402
from mnn_edge.serve.ports import free_ports  # noqa: E402

STARTUP_S = 90  # importing MLServer + loading the model; ~10 s here with a training run beside it


@pytest.fixture(scope="module")
def server(random_export, tmp_path_factory):
    """``mnn-serve pose.onnx`` in a subprocess; yields (grpc URL, http URL, log path, pid); SIGTERM at the end."""
    http_port, grpc_port = free_ports(2)
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mnn_edge.serve.cli", str(random_export / "pose.onnx"),
                                 "--http-port", str(http_port), "--grpc-port", str(grpc_port), "--threads", "1",
                                 "--upload-timeout", "1"],
                                stdout=out, stderr=subprocess.STDOUT, env=env)
    grpc_url, http_url = f"grpc://127.0.0.1:{grpc_port}/pose", f"http://127.0.0.1:{http_port}/pose"
    deadline = time.monotonic() + STARTUP_S
    while True:
        try:
            open_runner(grpc_url + "?timeout=5").close()
            break
        except MnnEdgeError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"mnn-serve did not come up within {STARTUP_S} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
    yield grpc_url, http_url, log, proc.pid
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0, log.read_text()[-3000:]
    assert "stopped (SIGTERM)" in log.read_text()
    assert "Traceback" not in log.read_text().split("stopped (SIGTERM)")[1]  # no teardown noise after it


def test_model_urls_parse_in_one_place():
    u = parse_model_url("grpc://10.0.0.5:9001/pose_int8?timeout=2.5")
    assert u == ModelURL("grpc", "10.0.0.5", 9001, "pose_int8", 2.5) and str(u) == "grpc://10.0.0.5:9001/pose_int8"
    assert parse_model_url("http://gpu-box/mnn") == ModelURL("http", "gpu-box", 8000, "mnn", DEFAULT_TIMEOUT_S)
    assert parse_model_url("grpc://[::1]:8001/m").address == "[::1]:8001"
    for bad, why in [("grpc://host:8001/", "names no server or no model"), ("grpc://:8001/m", "names no server"),
                     ("grpc://h:99999/m", "bad port"), ("grpc://h:1/m?timeout=0", "timeout must be"),
                     ("http://h:1/m?retries=3", "unknown URL option"), ("grpc://h:1/a/b", "names no server")]:
        with pytest.raises(MnnEdgeError, match=why):
            parse_model_url(bad)
    # CLIs keep URLs as strings (Path folds '//'); backend_for routes them to the remote runner
    assert artifact_arg("grpc://h:1/m") == "grpc://h:1/m"
    assert str(artifact_arg("export/pose.onnx")) == "export/pose.onnx"
    assert backend_for("grpc://h:1/m") == "remote" and backend_for("HTTP://h:1/m") == "remote"


@pytest.mark.parametrize("scheme", ["grpc", "http"])
def test_remote_outputs_equal_the_local_runner(server, random_export, scheme):
    url = server[0] if scheme == "grpc" else server[1]
    x = random_input(3, seed=1)
    with open_runner(random_export / "pose.onnx") as local, open_runner(url) as remote:
        want, got = local.infer(x), remote.infer(x)
        assert remote.metadata == local.metadata and remote.backend == "remote"
        assert remote.input_spec.shape == local.input_spec.shape
        assert remote.input_spec.max_batch == 64  # mnn-serve's per-request limit: clients split to it
    assert list(got) == list(want)
    for name in want:  # same ONNX Runtime graph; only the batch it ran in may differ
        assert got[name].shape == want[name].shape and got[name].dtype == want[name].dtype
        np.testing.assert_allclose(got[name], want[name], rtol=0, atol=PARITY_MAX_ABS[name])


def test_bounded_concurrent_load_loses_nothing(server, random_export):
    """4 clients x 10 requests at once (adaptive batching merges them): every answer arrives, and
    each is the one for its own client's input (a mix-up in the batcher's split would show)."""
    clients, per_client = 4, 10
    inputs = [random_input(1, seed=10 + c) for c in range(clients)]
    with open_runner(random_export / "pose.onnx") as local:
        want = [local.infer(x)["pose"] for x in inputs]
    results: dict[int, list] = {c: [] for c in range(clients)}
    errors: list[BaseException] = []

    def client(c: int) -> None:
        try:
            with open_runner(server[0]) as r:
                for _ in range(per_client):
                    results[c].append(r.infer(inputs[c])["pose"])
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and not any(t.is_alive() for t in threads)
    assert [len(results[c]) for c in range(clients)] == [per_client] * clients
    for c in range(clients):
        for got in results[c]:
            np.testing.assert_allclose(got, want[c], rtol=0, atol=PARITY_MAX_ABS["pose"])


def test_client_errors_are_one_line(server):
    grpc_url, http_url, _, _ = server
    base = grpc_url.rsplit("/", 1)[0]
    for url in (base + "/nope", http_url.rsplit("/", 1)[0] + "/nope"):
        with pytest.raises(MnnEdgeError, match=r"has no model 'nope' .*it serves: pose$"):
            open_runner(url)
    with open_runner(grpc_url) as r:
        with pytest.raises(InputError, match=r"shape \(N, 3, 256, 256\)"):
            r.infer(np.zeros((1, 3, 128, 128), np.float32))
        with pytest.raises(InputError, match="must be float"):
            r.infer(np.zeros((1, 3, 256, 256), np.uint8))
    with pytest.raises(MnnEdgeError, match=r"did not answer within the 0.001 s timeout"):
        with open_runner(grpc_url + "?timeout=0.001") as r:
            r.infer(random_input(1))


def test_server_down_is_one_line_and_exit_1(synthetic_dir, capsys):
    from mnn_edge.bench.cli import main as bench_main
    from mnn_edge.evaluate.cli import main as eval_main

    (port,) = free_ports(1)
    for scheme in ("grpc", "http"):
        assert run_cli(bench_main, [f"{scheme}://127.0.0.1:{port}/pose", "--runs", "1", "--no-progress"]) == 1
        err = capsys.readouterr().err.strip()
        assert err == (f"error: cannot reach the inference server at {scheme}://127.0.0.1:{port} (Connection "
                       "refused): is it running, and are host and port right?")
    assert run_cli(eval_main, ["--data", str(synthetic_dir), "--format", "synthetic", "--limit", "1", "--artifact",
                               f"grpc://127.0.0.1:{port}/pose", "--no-progress"]) == 1
    assert "cannot reach the inference server" in capsys.readouterr().err


def test_serve_refuses_a_busy_port_and_a_bad_artifact(server, random_export, tmp_path, capsys):
    from mnn_edge.serve.cli import main as serve_main

    busy = int(server[1].split(":")[2].split("/")[0])
    (free,) = free_ports(1)
    assert run_cli(serve_main, [str(random_export / "pose.onnx"), "--http-port", str(busy),
                                "--grpc-port", str(free)]) == 1
    assert capsys.readouterr().err.strip() == (f"error: port {busy} on 127.0.0.1 is already in use (another "
                                               "server?): pick a free one with --http-port")
    broken = tmp_path / "pose.onnx"
    broken.write_bytes(b"not an onnx file")
    http, grpc = free_ports(2)
    assert run_cli(serve_main, [str(broken), "--http-port", str(http), "--grpc-port", str(grpc)]) == 1
    assert "is not a loadable ONNX model" in capsys.readouterr().err
    assert "mlserver" not in sys.modules  # both refused before the server was imported


def test_mnn_run_with_a_served_model_writes_what_the_local_file_gives(server, random_export, tmp_path):
    """`mnn-run --engine grpc://...` unchanged: same frames, same faces, the same poses as the file."""
    import json

    from mnn_edge.run.cli import main as run_main
    from mnn_edge.run.synth_video import write_video

    video = write_video(tmp_path / "v.avi", frames=6)
    common = ["--video", str(video), "--box", "60,50,200,210", "--no-display", "--quiet"]
    assert run_cli(run_main, ["--engine", server[0], *common, "--json", str(tmp_path / "remote.jsonl")]) == 0
    assert run_cli(run_main, ["--engine", str(random_export / "pose.onnx"), *common,
                              "--json", str(tmp_path / "local.jsonl")]) == 0
    remote, local = ([json.loads(line) for line in (tmp_path / f"{n}.jsonl").read_text().splitlines()]
                     for n in ("remote", "local"))
    assert len(remote) == len(local) == 6
    for r, loc in zip(remote, local):
        assert r["frame"] == loc["frame"] and r["face"] == loc["face"] == 0
        np.testing.assert_allclose([r[k] for k in ("yaw", "pitch", "roll")],
                                   [loc[k] for k in ("yaw", "pitch", "roll")], atol=0.01)


def _post(http_url: str, body: dict) -> tuple[int, str]:
    """A raw V2 REST request (what a careless or hostile client can send), -> (status, body)."""
    import json
    import urllib.error
    import urllib.request

    base, model = http_url.rsplit("/", 1)
    req = urllib.request.Request(f"{base}/v2/models/{model}/infer", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def _body(shape: list[int], values: list[float], name: str = "image") -> dict:
    return {"inputs": [{"name": name, "shape": shape, "datatype": "FP32", "data": values}]}


BAD_REQUESTS = [  # (what a client sends, what its 400 must say)
    (_body([2, 3, 256, 256], [0.0] * (3 * 256 * 256)), "declares shape [2, 3, 256, 256]"),
    (_body([0, 3, 256, 256], []), "batch must be 1..64 crops per request, got 0"),
    (_body([-1, 3, 256, 256], []), "got -1"),
    (_body([1, 3, 8, 8], [0.0] * 192), "must have shape (N, 3, 256, 256)"),
    (_body([1, 3, 256, 256], [3e38] + [0.0] * (3 * 256 * 256 - 1)), "beyond"),
    ({"inputs": [_body([1, 3, 256, 256], [0.0] * (3 * 256 * 256))["inputs"][0]] * 2}, "got 'image', 'image'"),
]


@pytest.mark.reliability
def test_bad_requests_merged_with_good_ones_never_change_the_good_answers(server, random_export):
    """Good clients (gRPC, batched together by the server) beside a client that loops every bad
    request: each bad one is a 400 naming its own fault; every good answer equals its solo answer."""
    import json

    clients, rounds = 6, 4
    inputs = [random_input(1, seed=40 + c) for c in range(clients)]
    with open_runner(random_export / "pose.onnx") as local:
        want = [local.infer(x)["pose"] for x in inputs]
    got: dict[int, list] = {c: [] for c in range(clients)}
    errors: list[BaseException] = []
    bad_answers: list[tuple[int, str, str]] = []
    stop = threading.Event()

    def good(c: int) -> None:
        try:
            with open_runner(server[0]) as r:
                for _ in range(rounds):
                    got[c].append(r.infer(inputs[c])["pose"])
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    def bad() -> None:
        while not stop.is_set():
            for body, fault in BAD_REQUESTS:
                status, text = _post(server[1], body)
                bad_answers.append((status, text, fault))

    hostile = threading.Thread(target=bad)
    hostile.start()
    threads = [threading.Thread(target=good, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    stop.set()
    hostile.join(timeout=180)
    assert not errors, errors[0]
    for c in range(clients):
        assert len(got[c]) == rounds
        for answer in got[c]:
            np.testing.assert_allclose(answer, want[c], rtol=0, atol=PARITY_MAX_ABS["pose"])
    assert len(bad_answers) >= len(BAD_REQUESTS)
    for status, text, fault in bad_answers:
        assert status == 400, (status, text[:300])
        message = json.loads(text)["error"]
        assert fault in message and "\n" not in message and len(message) < 300, message


def test_nan_crops_over_grpc_are_refused_with_their_fault(server):
    x = random_input(2, seed=3)
    x[1, 0, 5, 5] = np.nan  # JSON cannot carry NaN; gRPC's binary tensors can
    with open_runner(server[0]) as r:
        with pytest.raises(MnnEdgeError, match="contains NaN or infinite values"):
            r.infer(x)
        assert np.isfinite(r.infer(x[:1])["pose"]).all()  # and the server goes on serving


def _raw_http(http_url: str, request: bytes, wait_s: float = 30) -> tuple[int, str]:
    """Send exactly these bytes (a lying header, a stalled upload), then read the answer; the
    server may answer, and close, before the declared body has arrived."""
    import socket

    port = int(http_url.split(":")[2].split("/")[0])
    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as s:
        s.sendall(request)
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body.decode(errors="replace")


@pytest.mark.reliability
def test_http_bodies_are_bounded_finished_and_never_logged(server):
    """A binary-tensor request (not announced by mnn-serve), a body larger than the limit and a
    stalled upload are each one JSON line with their reason; the log stays small."""
    import json

    _, http_url, log, _ = server
    size_before = log.stat().st_size
    path = "/v2/models/pose/infer"
    hdr = json.dumps({"inputs": [{"name": "image", "shape": [1, 3, 256, 256], "datatype": "FP32",
                                  "parameters": {"binary_data_size": 786432}}]}).encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
            f"Inference-Header-Content-Length: 10\r\nContent-Length: {len(hdr) + 4_000_000}\r\n\r\n").encode()
    status, text = _raw_http(http_url, head + hdr + os.urandom(100_000))  # 4 MB declared
    assert status == 400 and "binary tensor data is not supported over HTTP" in json.loads(text)["error"]
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {10**12}\r\n\r\n"
    status, text = _raw_http(http_url, head.encode() + b"{")
    assert status == 413 and "exceeds the" in json.loads(text)["error"]
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n"
    t0 = time.monotonic()
    status, text = _raw_http(http_url, head.encode() + b'{"inputs": [')  # and then nothing more
    assert status == 408 and "not received in time" in json.loads(text)["error"]
    assert time.monotonic() - t0 < 10  # --upload-timeout 1 in this server
    assert log.stat().st_size - size_before < 20_000  # nothing request-sized was logged


def _rss_mb(pid: int) -> float:
    from pathlib import Path

    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.reliability
def test_largest_requests_and_cancelling_clients_leave_memory_and_others_alone(server, random_export):
    """Requests of the largest allowed batch (64 crops) raise the server's memory by a bounded amount
    that later ones do not add to (every call is at most 8 crops); clients that give up mid-request
    (a 5 ms timeout cancels their gRPC call) cost the good clients beside them nothing: every good
    answer is its own, none waits for a cancelled neighbour."""
    from pathlib import Path

    grpc_url, _, _, pid = server
    if not Path(f"/proc/{pid}/statm").exists():
        pytest.skip("no /proc/PID/statm to read the server's resident memory from")
    big = random_input(64, seed=5)
    with open_runner(grpc_url) as r:
        r.infer(random_input(8, seed=4))
        base = _rss_mb(pid)
        for _ in range(2):
            r.infer(big)
        after_two = _rss_mb(pid)
        for _ in range(3):
            r.infer(big)
        after_five = _rss_mb(pid)
    # measured 245 -> 353 MB, then 423 after three more (no ORT arena, calls of <= 8 crops); with the
    # arena 763 -> 1,223 MB; one batch of 128 run whole took +2.8 GB and kept it
    assert after_two - base < 400, (base, after_two)
    assert after_five - after_two < 150, (after_two, after_five)

    x = random_input(1, seed=9)
    with open_runner(random_export / "pose.onnx") as local:
        want = local.infer(x)["pose"]
    stop = threading.Event()
    cancelled = [0]
    latencies: list[float] = []
    errors: list[BaseException] = []

    def quitter() -> None:
        with open_runner(grpc_url) as r:
            r._transport._t = 0.005  # noqa: SLF001 - opened normally, then each call gives up after 5 ms
            while not stop.is_set():
                try:
                    r.infer(random_input(4, seed=1))
                except MnnEdgeError:
                    cancelled[0] += 1

    def good() -> None:
        try:
            with open_runner(grpc_url) as r:
                for _ in range(10):
                    t0 = time.monotonic()
                    np.testing.assert_allclose(r.infer(x)["pose"], want, rtol=0, atol=PARITY_MAX_ABS["pose"])
                    latencies.append(time.monotonic() - t0)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    quitters = [threading.Thread(target=quitter) for _ in range(2)]
    goods = [threading.Thread(target=good) for _ in range(3)]
    for t in quitters + goods:
        t.start()
    for t in goods:
        t.join(timeout=120)
    stop.set()
    for t in quitters:
        t.join(timeout=60)
    assert not errors, errors[0]
    assert len(latencies) == 30 and max(latencies) < 10  # nobody waited for a vanished neighbour
    assert cancelled[0] > 0  # the quitters really did give up mid-request


@pytest.mark.reliability
@pytest.mark.parametrize("reply, why", [(b"SSH-2.0-OpenSSH_9.2\r\n", "HTTPParseError"), (None, "HTTPConnectionClosed"),
                                        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "JSONDecodeError")])
def test_an_http_url_at_something_else_is_one_line(reply, why):
    """A port that speaks another protocol, closes at once, or answers non-JSON: one line, no traceback."""
    import socket

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(5)
    port = srv.getsockname()[1]

    def answer() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                try:
                    conn.recv(65536)
                    if reply is not None:
                        conn.sendall(reply)
                except OSError:
                    pass

    threading.Thread(target=answer, daemon=True).start()
    try:
        with pytest.raises(MnnEdgeError, match=rf"127.0.0.1:{port} \(not a V2 inference server's answer: {why}"):
            open_runner(f"http://127.0.0.1:{port}/pose?timeout=5")
    finally:
        srv.close()
