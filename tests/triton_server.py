"""A real Triton Inference Server for the tests: the ``tritonserver`` 2.51 that the
``nvidia-pytriton`` wheel bundles (python backend only; installed ``--no-deps``, its ``numpy<2``
pin kept out), started on 127.0.0.1 free ports and stopped by its PID.

Laid out as PyTriton lays it out: ``BACKENDS/python/`` holds the backend library, its utils and
the stub for this interpreter's version; ``BACKENDS/onnxruntime/model.py`` is the stand-in ONNX
Runtime backend (``tests/triton_backend``). The stub must load *this* interpreter's libpython
(``LD_LIBRARY_PATH`` = its LIBDIR first, else ``'_thread.RLock' object has no attribute
'_recursion_count'``) and the wheel's bundled libraries (else a missing ``libcudart`` and a long
hang); it finds onnxruntime through ``PATH``/``PYTHONPATH`` of this environment. The python
backend's shared-memory regions get a prefix of their own, so stopping removes exactly them.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

STANDIN = Path(__file__).resolve().parent / "triton_backend"
PIN = "nvidia-pytriton==0.7.0"


def bundled_server() -> tuple[Path, Path] | str:
    """(tritonserver folder, bundled libraries) of the installed wheel, or why there is none.
    Found without importing pytriton (its own imports need packages the tests do not)."""
    if sys.platform != "linux" or platform.machine() != "x86_64":
        return f"the bundled tritonserver is a Linux x86-64 binary (this is {sys.platform} {platform.machine()})"
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        return f"no bundled Triton: pip install --no-deps '{PIN}'"
    root = Path(list(spec.submodule_search_locations)[0])
    server, libs = root / "tritonserver", root.parent / "nvidia_pytriton.libs"
    if not (server / "bin" / "tritonserver").is_file() or not libs.is_dir():
        return f"{root} has no tritonserver binary: reinstall with pip install --no-deps '{PIN}'"
    return server, libs


def lay_out_backends(server: Path, dest: Path) -> Path:
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    stub = server / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.is_file():
        raise RuntimeError(f"the bundled Triton has no python backend stub for Python {version}")
    py = dest / "python"
    py.mkdir(parents=True)
    for f in (server / "backends" / "python").iterdir():
        if f.is_file():
            shutil.copy(f, py / f.name)
    shutil.copy(stub, py / "triton_python_backend_stub")
    shutil.copytree(STANDIN / "onnxruntime", dest / "onnxruntime", ignore=shutil.ignore_patterns("__pycache__"))
    return dest


@dataclass
class TritonServer:
    process: subprocess.Popen
    http_port: int
    grpc_port: int
    log: Path
    shm_prefix: str

    def url(self, scheme: str, model: str) -> str:
        return f"{scheme}://127.0.0.1:{self.grpc_port if scheme == 'grpc' else self.http_port}/{model}"

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=30) as r:
            return r.read()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        for f in Path("/dev/shm").glob(f"{self.shm_prefix}*"):
            f.unlink(missing_ok=True)


def start(repo: Path, work: Path, ports: tuple[int, int], startup_s: float = 120.0) -> TritonServer:
    """Serve ``repo``; returns once the server is ready (RuntimeError with its log tail if not)."""
    found = bundled_server()
    if isinstance(found, str):
        raise RuntimeError(found)
    server, libs = found
    backends = lay_out_backends(server, work / "backends")
    http_port, grpc_port = ports
    shm_prefix = f"mnn_test_{uuid.uuid4().hex[:8]}_"
    env = {**os.environ,
           "LD_LIBRARY_PATH": os.pathsep.join(filter(None, [sysconfig.get_config_var("LIBDIR"), str(libs),
                                                            os.environ.get("LD_LIBRARY_PATH")])),
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
           "PYTHONPATH": os.pathsep.join(filter(None, [sysconfig.get_paths()["purelib"],
                                                       sysconfig.get_paths()["platlib"],
                                                       os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": "1"}
    log = work / "tritonserver.log"
    cmd = [str(server / "bin" / "tritonserver"), "--model-repository", str(repo), "--backend-directory",
           str(backends), "--http-address", "127.0.0.1", "--grpc-address", "127.0.0.1",
           "--http-port", str(http_port), "--grpc-port", str(grpc_port), "--allow-metrics", "false",
           "--exit-on-error", "false", "--strict-readiness", "false",
           f"--backend-config=python,shm-region-prefix-name={shm_prefix}",
           "--cache-directory", str(work / "cache")]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=work)
    srv = TritonServer(proc, http_port, grpc_port, log, shm_prefix)
    deadline = time.monotonic() + startup_s
    while True:
        try:
            srv.get("/v2/health/ready")
            return srv
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                srv.stop()
                raise RuntimeError(f"tritonserver did not come up:\n{log.read_text()[-3000:]}") from None
            time.sleep(0.3)
