"""Where does an artifact's time go? ONNX Runtime's profiler, per network part and per operator.

    E=bench/results/quantization/export; python bench/profile_int8.py $E/mnn.onnx $E/mnn.int8.onnx

For each artifact: ``--runs`` batch-1 inferences with ``enable_profiling`` (after ``--warmup``), the
"Node" events summed by part of the network (encoder stage, decoder stage, heads, landmark decode:
read from the node names the exporter writes: ``/net/encoder/stage_9/...``, ``/net/stage_2/...``)
and by operator type after ONNX Runtime's graph fusions (``QLinearConv`` = INT8 compute,
``Conv``/``FusedConv`` = float). Prints Markdown tables: what the full model's INT8/FP32 ratio is made of (issue 16).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from mnn_edge.runtime.onnxruntime_backend import session_options

PART = [(re.compile(r"/encoder/stage_(\d)"), "encoder stage {}"),
        (re.compile(r"/net/stage_(\d)"), "decoder stage {}"),
        (re.compile(r"fc_pose_proj"), "fc_pose_proj"), (re.compile(r"fc_pose"), "fc_pose"),
        (re.compile(r"fc_lnd"), "fc_lnd (heatmaps)"), (re.compile(r"fc_vis"), "fc_vis"),
        (re.compile(r"decode|Softmax|MatMul"), "landmark decode (softmax, soft-argmax)")]


def part_of(node: str) -> str:
    for pattern, label in PART:
        m = pattern.search(node)
        if m:
            return label.format(*m.groups())
    return "other (reshapes, casts, Q/DQ at the edges)"


def profile(path: Path, runs: int, warmup: int) -> tuple[dict[str, float], dict[str, float], float]:
    """(ms per run by part, ms per run by op type, total node ms per run)."""
    import onnxruntime as ort

    opts = session_options(0)
    with tempfile.TemporaryDirectory() as tmp:
        opts.enable_profiling = True
        opts.profile_file_prefix = str(Path(tmp) / "prof")
        s = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        i = s.get_inputs()[0]
        x = np.random.default_rng(0).standard_normal((1, 3, i.shape[2], i.shape[3])).astype(np.float32)
        for _ in range(warmup + runs):
            s.run(None, {i.name: x})
        events = json.loads(Path(s.end_profiling()).read_text())
    nodes = [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    nodes = nodes[len(nodes) * warmup // (warmup + runs):]  # the timed runs only
    by_part: dict[str, float] = defaultdict(float)
    by_op: dict[str, float] = defaultdict(float)
    for e in nodes:
        ms = e["dur"] / 1000.0 / runs
        by_part[part_of(e["name"])] += ms
        by_op[e["args"].get("op_name", "?")] += ms
    return dict(by_part), dict(by_op), sum(by_part.values())


def table(title: str, cols: list[str], rows: dict[str, list[float]], totals: list[float]) -> str:
    head = f"| {title} | " + " | ".join(f"{c} ms" for c in cols) + (" | ratio |" if len(cols) == 2 else " |")
    lines = [head, "|" + "---|" * (len(cols) + 1 + (len(cols) == 2))]
    for name, vals in sorted(rows.items(), key=lambda kv: -max(kv[1])):
        ratio = f" | {vals[1] / vals[0]:.2f}" if len(cols) == 2 and vals[0] > 0.05 else (" | –" if len(cols) == 2
                                                                                       else "")
        lines.append(f"| {name} | " + " | ".join(f"{v:.2f}" for v in vals) + ratio + " |")
    ratio = f" | {totals[1] / totals[0]:.2f}" if len(cols) == 2 else ""
    lines.append("| **all nodes** | " + " | ".join(f"**{t:.2f}**" for t in totals) + ratio + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("artifacts", nargs="+", type=Path, help="one or two ONNX files (two: the second vs the first)")
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    args = p.parse_args(argv)
    results = [profile(a, args.runs, args.warmup) for a in args.artifacts]
    cols = [a.name for a in args.artifacts]
    parts = {k: [r[0].get(k, 0.0) for r in results] for r in results for k in r[0]}
    ops = {k: [r[1].get(k, 0.0) for r in results] for r in results for k in r[1]}
    totals = [r[2] for r in results]
    print(f"ONNX Runtime profiler, batch 1, mean over {args.runs} runs, node kernel time only\n")
    print(table("part of the network", cols, parts, totals) + "\n")
    print(table("operator (after fusion)", cols, ops, totals))
    return 0


if __name__ == "__main__":
    sys.exit(main())
