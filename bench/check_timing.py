"""Methodology check: is an artifact's latency the same timed alone as interleaved with others?

    python bench/check_timing.py export/pose.onnx export/pose.int8.onnx export/mnn.onnx export/mnn.int8.onnx

1. every artifact alone, each in a fresh process (``mnn-bench ARTIFACT``),
2. all of them interleaved round by round in one process (``mnn-bench A B C ...``, what the report
   and bench/quantization.py do),
then compares the p50s. The interleaved p50 must be within ``--tolerance`` (10%) of the alone p50
for every artifact, or the script exits 1: a benchmark whose numbers depend on what else it times
in the same run measures contention, not the model (issue 16). Alone runs go first and last
(their mean is the reference) so a drift of the machine during the check shows as a spread. A
last column times each file with a bare ``onnxruntime.InferenceSession.run`` (default options,
fresh process): what the file costs with no toolkit around it. ``--report RESULTS`` adds the
latencies a report recorded for the same files (``mnn-report --from-checkpoint``,
``bench/quantization.py``: their ``results.json``), held to the same tolerance against alone.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from mnn_edge.bench.fresh import bench_command
from mnn_edge.bench.timing import TimingConfig


def bench(artifacts: list[str], runs: int, warmup: int, batch: int, threads: int, out: Path) -> dict[str, float]:
    """p50 ms per artifact path from one ``mnn-bench`` process (the command the report runs too)."""
    cmd = bench_command([Path(a) for a in artifacts], (batch,), TimingConfig(warmup=warmup, runs=runs), threads,
                        "cpu", out, progress=False)
    done = subprocess.run([*cmd, "--force"], capture_output=True, text=True)
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
        raise SystemExit(f"mnn-bench failed: {last}")
    doc = json.loads(out.read_text())
    return {r["artifact"]: r["latency_ms"]["p50"] for r in doc["records"] if r["batch"] == batch}


PLAIN = """
import sys, time, numpy as np, onnxruntime as ort
s = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
i = s.get_inputs()[0]
x = np.random.default_rng(1).standard_normal((int(sys.argv[2]), 3, i.shape[2], i.shape[3])).astype(np.float32)
for _ in range(int(sys.argv[3])):
    s.run(None, {i.name: x})
t = []
for _ in range(int(sys.argv[4])):
    t0 = time.perf_counter(); s.run(None, {i.name: x}); t.append((time.perf_counter() - t0) * 1000)
print(float(np.median(t)))
"""


def plain_session_p50(artifact: str, runs: int, warmup: int, batch: int) -> float:
    """p50 ms of a bare ``onnxruntime.InferenceSession.run`` (default options) in a fresh process:
    the number a user gets with no toolkit at all, the report's pose FP32 is checked against it."""
    done = subprocess.run([sys.executable, "-c", PLAIN, artifact, str(batch), str(warmup), str(runs)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"plain InferenceSession run failed: {done.stderr.strip().splitlines()[-1:]}")
    return float(done.stdout.strip())


def report_p50(results: Path, batch: int) -> dict[str, float]:
    """p50 ms per artifact file name that a results document's benchmark recorded at ``batch``."""
    doc = json.loads(results.read_text())
    return {Path(r["artifact"]).name: r["latency_ms"]["p50"] for r in doc["bench"]["records"] if r["batch"] == batch}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("artifacts", nargs="+", help="artifacts to time (at least two)")
    p.add_argument("--runs", type=int, default=30, help="timed calls per artifact")
    p.add_argument("--warmup", type=int, default=5, help="untimed calls per artifact")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0: all cores)")
    p.add_argument("--tolerance", type=float, default=0.10, help="allowed |interleaved / alone - 1|")
    p.add_argument("--report", type=Path, default=None,
                   help="a report's results.json: its latencies of the same files are checked too")
    args = p.parse_args(argv)
    if len(args.artifacts) < 2:
        p.error("give at least two artifacts: the check compares each alone with all interleaved")
    for a in args.artifacts:
        if not Path(a).is_file():
            p.error(f"artifact not found: {a}")
    with tempfile.TemporaryDirectory(prefix="mnn-check-timing-") as tmp:
        t = Path(tmp)
        alone_first = {a: bench([a], args.runs, args.warmup, args.batch, args.threads, t / "a.json")[a]
                       for a in args.artifacts}
        together = bench(args.artifacts, args.runs, args.warmup, args.batch, args.threads, t / "all.json")
        alone_last = {a: bench([a], args.runs, args.warmup, args.batch, args.threads, t / "b.json")[a]
                      for a in args.artifacts}
        plain = {a: plain_session_p50(a, args.runs, args.warmup, args.batch) for a in args.artifacts}
    reported = report_p50(args.report, args.batch) if args.report else {}
    print(f"p50 ms at batch {args.batch}, {args.runs} runs, threads {args.threads} (0 = all cores)")
    print("| artifact | alone (first, last) | interleaved | interleaved / alone | bare InferenceSession.run "
          "| report | report / alone |\n|---|---|---|---|---|---|---|")
    worst = 0.0
    for a in args.artifacts:
        alone = (alone_first[a] + alone_last[a]) / 2
        ratio = together[a] / alone
        worst = max(worst, abs(ratio - 1))
        rep = reported.get(Path(a).name)
        if rep is not None:
            worst = max(worst, abs(rep / alone - 1))
        rep_cells = f"{rep:.1f} | {rep / alone:.3f}" if rep is not None else "– | –"
        print(f"| {a} | {alone:.1f} ({alone_first[a]:.1f}, {alone_last[a]:.1f}) | {together[a]:.1f} | {ratio:.3f} "
              f"| {plain[a]:.1f} | {rep_cells} |")
    ok = worst <= args.tolerance
    print(f"{'PASS' if ok else 'FAIL'}: largest difference {100 * worst:.1f}% (tolerance {100 * args.tolerance:.0f}%)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
