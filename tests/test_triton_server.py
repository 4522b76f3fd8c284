"""A real Triton Inference Server answers what ``--triton-repo`` writes (``pytest -m triton``).

The server is the ``tritonserver`` 2.51 bundled by ``nvidia-pytriton`` (``tests/triton_server.py``:
python backend only; ``platform: "onnxruntime_onnx"`` models run through a stand-in ONNX Runtime
backend, so the server's config parsing, dynamic batching, protocols and statistics are real).
Skipped, with the reason, where the wheel is not installed or cannot run; README's test command
installs it.
"""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc,http] (the serve/dev extra) is the V2 client")

from triton_server import bundled_server, start  # noqa: E402

from mnn_edge.artifact.triton import ServingConfig, write_triton_model  # noqa: E402
from mnn_edge.cli_util import run_cli  # noqa: E402
from mnn_edge.errors import MnnEdgeError  # noqa: E402
from mnn_edge.runtime import open_runner  # noqa: E402
from mnn_edge.runtime.compare import PARITY_MAX_ABS  # noqa: E402
from mnn_edge.runtime.inputs import random_input  # noqa: E402

pytestmark = pytest.mark.triton
MODELS = {"pose": "pose.onnx", "mnn": "mnn.onnx", "pose_int8": "pose.int8.onnx", "mnn_int8": "mnn.int8.onnx"}


@pytest.fixture(scope="module")
def artifacts(random_export, tmp_path_factory):
    """FP32 and INT8 (CPU flavour) pose and full models of the random export."""
    from mnn_edge.export.cli import main as export_main

    found = bundled_server()
    if isinstance(found, str):
        pytest.skip(found)
    out = tmp_path_factory.mktemp("triton_artifacts")
    with pytest.warns(UserWarning, match="calibration images"):
        assert export_main(["--onnx", str(random_export / "pose.onnx"), str(random_export / "mnn.onnx"),
                            "--out", str(out), "--int8", "--calib-random", "4", "--calib-method", "minmax",
                            "--ranges-dir", str(out / "calibration"), "--no-progress"]) == 0
    files = {name: (random_export if "." not in f[:-5] else out) / f for name, f in MODELS.items()}
    assert all(p.is_file() for p in files.values())
    return files


@pytest.fixture(scope="module")
def triton(artifacts, tmp_path_factory):
    """The real server on 127.0.0.1 serving the repository --triton-repo writes (and a TensorRT
    plan built by the TensorRT double, which this server has no backend for); stopped by PID."""
    from trt_double.install import installed
    from trt_double.models import write_tiny

    from mnn_edge.artifact import Precision
    from mnn_edge.engine_build.cli import main as build_main
    from mnn_edge.serve.ports import free_ports

    repo = tmp_path_factory.mktemp("repo")
    for name, path in artifacts.items():
        write_triton_model(path, repo, ServingConfig(max_batch_size=8), name=name)
    plans = tmp_path_factory.mktemp("plans")
    with installed("10.3"):
        assert run_cli(build_main, [str(write_tiny(plans / "export", Precision.FP16)), "--max-batch", "4", "--out",
                                    str(plans / "e"), "--no-progress", "--no-timing-cache", "--triton-repo",
                                    str(repo), "--triton-kind", "gpu"]) == 0
    work = tmp_path_factory.mktemp("triton")
    try:
        srv = start(repo, work, tuple(free_ports(2)))
    except RuntimeError as e:
        pytest.fail(str(e))  # installed but not starting is a failure, not a skip
    yield srv
    srv.stop()
    assert srv.process.returncode is not None
    assert not list(__import__("pathlib").Path("/dev/shm").glob(f"{srv.shm_prefix}*"))


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("scheme", ["grpc", "http"])
def test_remote_runner_through_triton_equals_the_local_runner(triton, artifacts, model, scheme):
    x = random_input(3, seed=7)
    with open_runner(artifacts[model]) as local, open_runner(triton.url(scheme, model)) as remote:
        want, got = local.infer(x), remote.infer(x)
        assert remote.metadata == local.metadata  # read from the config's parameters (Triton's metadata has none)
        assert remote.input_spec.max_batch == 8  # the config's max_batch_size
    assert sorted(got) == sorted(want)
    for name in want:
        assert got[name].shape == want[name].shape and got[name].dtype == want[name].dtype
        np.testing.assert_allclose(got[name], want[name], rtol=0, atol=PARITY_MAX_ABS[name])


def test_http_uses_binary_tensors_against_triton(triton):
    with open_runner(triton.url("http", "pose")) as r:
        assert r._transport._binary  # noqa: SLF001 - Triton announces binary_tensor_data
    meta = json.loads(triton.get("/v2"))
    assert "binary_tensor_data" in meta["extensions"]


def test_dynamic_batching_merges_concurrent_requests(triton):
    before = _stats(triton, "pose")
    errors: list[BaseException] = []

    def client(seed: int) -> None:
        try:
            with open_runner(triton.url("grpc", "pose")) as r:
                for _ in range(4):
                    r.infer(random_input(1, seed=seed))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=client, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    after = _stats(triton, "pose")
    inferences = after["inference_count"] - before["inference_count"]
    executions = after["execution_count"] - before["execution_count"]
    assert inferences == 32 and executions < inferences  # the server merged requests into batches


def _stats(triton, model: str) -> dict:
    return json.loads(triton.get(f"/v2/models/{model}/stats"))["model_stats"][0]


def test_mnn_run_on_a_triton_model_writes_what_the_local_file_gives(triton, artifacts, tmp_path):
    from mnn_edge.run.cli import main as run_main
    from mnn_edge.run.synth_video import write_video

    video = write_video(tmp_path / "v.avi", frames=4)
    common = ["--video", str(video), "--box", "60,50,200,210", "--no-display", "--quiet"]
    assert run_cli(run_main, ["--engine", triton.url("grpc", "mnn"), *common,
                              "--json", str(tmp_path / "remote.jsonl")]) == 0
    assert run_cli(run_main, ["--engine", str(artifacts["mnn"]), *common, "--json", str(tmp_path / "local.jsonl")]) == 0
    remote, local = ([json.loads(line) for line in (tmp_path / f"{n}.jsonl").read_text().splitlines()]
                     for n in ("remote", "local"))
    assert len(remote) == len(local) == 4
    for r, loc in zip(remote, local):
        np.testing.assert_allclose([r[k] for k in ("yaw", "pitch", "roll")], [loc[k] for k in ("yaw", "pitch", "roll")],
                                   atol=0.01)
        np.testing.assert_allclose(r["landmarks"], loc["landmarks"], atol=0.05)


def test_an_unknown_model_on_triton_is_one_line(triton):
    served = "mnn, mnn_int8, pose, pose_fp16, pose_int8"
    with pytest.raises(MnnEdgeError, match=rf"has no model 'nope' .*it serves: {served}$"):
        open_runner(triton.url("grpc", "nope"))


def test_a_plan_config_is_parsed_and_refused_by_the_server_itself(triton):
    """Our .plan config passes Triton's own parsing; this CPU-only server then refuses the model for
    the one reason it has: no TensorRT backend (a config error would name the config instead)."""
    import urllib.request

    req = urllib.request.Request(f"http://127.0.0.1:{triton.http_port}/v2/repository/index", data=b"{}",
                                 method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        index = {m["name"]: m for m in json.loads(r.read())}
    assert {index[m]["state"] for m in MODELS} == {"READY"}
    plan = index["pose_fp16"]
    assert plan["state"] == "UNAVAILABLE", plan
    assert "unable to find backend library for backend 'tensorrt'" in plan["reason"], plan
    with pytest.raises(MnnEdgeError, match="pose_fp16"):
        with open_runner(triton.url("grpc", "pose_fp16")) as r:
            r.infer(random_input(1))
