"""What a benchmark ran on: CPU, cores, memory, GPU and driver (when nvidia-smi is there), library versions.

Latency means nothing without the machine; every benchmark JSON carries this record, and
``mnn-report`` prints it beside the table. Collected without importing torch or tensorrt (their
versions come from package metadata), so recording the machine never loads a heavy library; the
TensorRT side (:func:`tensorrt_facts`, for bench/gpu_check) loads TensorRT and CUDA only when called.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata as importlib_metadata
from pathlib import Path

from mnn_edge.host import memory_gb

LIBRARIES = ("mnn-edge", "numpy", "onnx", "onnxruntime", "onnxruntime-gpu", "torch", "tensorrt",
             "opencv-python-headless")


def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo`` on Linux, ``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("model name", "Model", "Hardware")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# The instruction-set features that decide how fast INT8 and FP32 kernels run: the same INT8 graph's
# ratio to FP32 differs between hosts with and without them, so a ratio means little without its host.
SPEED_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8",
               "amx_bf16", "asimd", "asimddp", "sve", "i8mm")


def cpu_flags() -> list[str]:
    """The CPU's speed-relevant instruction-set flags (``/proc/cpuinfo``; [] where it is unreadable)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    have = set(line.split(":", 1)[1].split())
                    return [flag for flag in SPEED_FLAGS if flag in have]
    except OSError:
        pass
    return []


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask, not the host's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def gpus(timeout_s: float = 10.0) -> list[dict[str, str]]:
    """One dict (name, driver, memory) per NVIDIA GPU that ``nvidia-smi`` lists; [] without one.

    Jetsons have no nvidia-smi; there the L4T release (``/etc/nv_tegra_release``) names the board stack.
    """
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                                  "--format=csv,noheader"], capture_output=True, text=True, timeout=timeout_s,
                                 check=True).stdout
        except (subprocess.SubprocessError, OSError):
            return []
        rows = [[c.strip() for c in line.split(",")] for line in out.splitlines() if line.strip()]
        return [{"name": r[0], "driver": r[1], "memory": r[2]} for r in rows if len(r) >= 3]
    try:
        with open("/etc/nv_tegra_release") as f:
            return [{"name": "NVIDIA Jetson", "driver": f.readline().strip(), "memory": "shared"}]
    except OSError:
        return []


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that decide the speed (absent ones are left out)."""
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return found


def machine_record() -> dict:
    """Everything above in one JSON-ready dict."""
    return {"cpu": cpu_model(), "cpu_flags": cpu_flags(), "cores": usable_cores(), "memory_gb": memory_gb(),
            "os": platform.platform(),
            "python": platform.python_version(), "gpus": gpus(), "libraries": library_versions(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "")}


def tensorrt_facts() -> dict:
    """The TensorRT side of the machine (version, GPU, CUDA bindings, L4T): what bench/gpu_check
    records besides :func:`machine_record`. Fails in one line without TensorRT, CUDA or a GPU."""
    from mnn_edge.runtime.tensorrt.capabilities import Capabilities, import_tensorrt
    from mnn_edge.runtime.tensorrt.cuda_memory import open_cuda
    from mnn_edge.runtime.tensorrt.loader import machine_gpu

    trt = import_tensorrt()
    cuda = open_cuda()
    try:
        gpu = machine_gpu(cuda)
        backend = cuda.backend
    finally:
        cuda.close()
    caps = Capabilities.of(trt)
    jetpack = Path("/etc/nv_tegra_release")
    return {"tensorrt": caps.version, "gpu": gpu.name, "compute_capability": gpu.compute_capability,
            "cuda_python_backend": backend, "strongly_typed_only": caps.strongly_typed_only,
            "l4t": jetpack.read_text().splitlines()[0] if jetpack.is_file() else "",
            "trtexec": shutil.which("trtexec") or "", "python": sys.version.split()[0]}


def format_machine(rec: dict) -> str:
    """A few readable lines for the screen and for REPORT.md."""
    gpu = "; ".join(f"{g['name']} (driver {g['driver']}, {g['memory']})" for g in rec.get("gpus", [])) or "none"
    libs = ", ".join(f"{k} {v}" for k, v in sorted(rec.get("libraries", {}).items()))
    flags = " ".join(rec.get("cpu_flags", [])) or "not recorded"
    return (f"CPU: {rec.get('cpu', '?')}, {rec.get('cores', '?')} usable cores, {rec.get('memory_gb', '?')} GB RAM\n"
            f"CPU flags: {flags}\n"
            f"GPU: {gpu}\nOS: {rec.get('os', '?')}, Python {rec.get('python', '?')}\nLibraries: {libs}")
