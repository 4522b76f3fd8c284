"""A benchmark timed in a process of its own: what ``mnn-bench`` measures when a user runs it.

Timing in a process that has just exported with PyTorch and evaluated with ONNX Runtime measures
their leftovers too (torch's and ONNX Runtime's thread pools waiting on the same two cores):
``mnn-report --from-checkpoint`` timed 3.4x slower in-process than ``mnn-bench`` on the same files.
So every library path that reports latency after other work calls ``mnn-bench`` in a child process
with the same settings and reads its JSON.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from mnn_edge.bench.schema import BenchRun, validate
from mnn_edge.bench.timing import TimingConfig
from mnn_edge.errors import MnnEdgeError
from mnn_edge.fileio import read_json


def bench_command(artifacts: list[Path], batches: tuple[int, ...], timing: TimingConfig, threads: int,
                  device: str, json_out: Path, progress: bool) -> list[str]:
    """The ``mnn-bench`` argument list for these settings (a list, never a shell string)."""
    cmd = [sys.executable, "-m", "mnn_edge.bench.cli", *(str(a) for a in artifacts),
           "--batch", ",".join(str(b) for b in batches), "--warmup", str(timing.warmup),
           "--threads", str(threads), "--device", device, "--json", str(json_out)]
    cmd += ["--runs", str(timing.runs)] if timing.seconds is None else ["--seconds", str(timing.seconds)]
    return cmd + ([] if progress else ["--no-progress"])


def bench_in_fresh_process(artifacts: list[Path], batches: tuple[int, ...], timing: TimingConfig, threads: int,
                           device: str = "cpu", progress: bool = True) -> BenchRun:
    """Time ``artifacts`` interleaved (as ``mnn-bench A B ...``) in a child process; its progress and
    errors go to this process's stderr."""
    with tempfile.TemporaryDirectory(prefix="mnn-bench-") as tmp:
        out = Path(tmp) / "bench.json"
        cmd = bench_command(artifacts, batches, timing, threads, device, out, progress)
        done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=None)
        if done.returncode != 0:
            raise MnnEdgeError(f"the benchmark process (mnn-bench in a fresh process) failed with exit "
                               f"{done.returncode}; its error is printed above")
        return validate(read_json(out, "benchmark JSON"), "mnn-bench (fresh process)")
