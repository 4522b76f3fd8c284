"""Accuracy of a set of artifacts on one data set, as one JSON file the report reads.

The metrics come from helper B's :func:`mnn_edge.evaluate.metrics.evaluate_artifact` (the same
numbers ``mnn-eval --json`` prints). Stored rounded to a fixed number of decimals so that
re-running on the same data and artifacts reproduces the report's accuracy figures exactly, and
so no last-bit float noise from the thread scheduler can make two reports differ.

File layout::

    {"schema": "mnn-edge-accuracy/1", "data": {"root": "...", "format": "synthetic", "n": 200, ...},
     "results": [{"name": "pose.int8", "artifact": "export/pose.int8.onnx",
                  "metrics": {"n": 200, "mae_yaw": 1.234, ..., "nme": 0.0312, "vis_acc": null}}]}
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from mnn_edge.errors import MnnEdgeError
from mnn_edge.fileio import read_json, write_text_atomic

ACCURACY_SCHEMA = "mnn-edge-accuracy/1"
METRIC_KEYS = ("n", "mae_yaw", "mae_pitch", "mae_roll", "mae", "nme", "nme_box", "vis_acc")
DECIMALS = 6  # degrees to a micro-degree, NME fractions to 1e-6: far below any difference that matters


@dataclass(frozen=True)
class AccuracyResult:
    name: str  # matches the benchmark record's name (file name without suffix, e.g. "pose.int8")
    artifact: str
    metrics: dict[str, float | int | None]  # METRIC_KEYS; None where the model has no such output

    def get(self, key: str) -> float | None:
        v = self.metrics.get(key)
        return None if v is None else float(v)


@dataclass(frozen=True)
class AccuracySet:
    results: tuple[AccuracyResult, ...]
    data: dict  # where the samples came from (root, format, n, seed)

    def to_dict(self) -> dict:
        return {"schema": ACCURACY_SCHEMA, "data": self.data,
                "results": [{"name": r.name, "artifact": r.artifact, "metrics": r.metrics} for r in self.results]}

    def by_name(self) -> dict[str, AccuracyResult]:
        return {r.name: r for r in self.results}


def data_caption(sets: list[AccuracySet]) -> str:
    """One line naming the accuracy data when every set shares it (the plot says what it plots)."""
    datas = {json.dumps(s.data, sort_keys=True) for s in sets}
    if len(datas) != 1:
        return ""
    d = sets[0].data
    root = Path(str(d.get("root", "?")))
    where = "/".join(root.parts[-2:]) or str(root)
    parts = [f"{where} ({d.get('format', '?')})"] + ([f"{d['subset']} people"] if d.get("subset") else [])
    labels = "pose vs teacher labels" if d.get("pose_labels") else "true labels"
    return f"accuracy: {', '.join(parts)}, {d.get('n', '?')} faces, {labels}"


def clean_metrics(d: dict, source: str = "accuracy results") -> dict[str, float | int | None]:
    """Keep METRIC_KEYS, NaN (not measured) -> None, floats rounded to DECIMALS (see the module
    docstring). Anything else that is not a finite number >= 0 (a string, a list, Infinity, a
    negative error; ``n`` not a whole number) is one line naming ``source``, not a traceback or a
    report row printing it."""
    out: dict[str, float | int | None] = {}
    bad = []
    for key in METRIC_KEYS:
        v = d.get(key)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            out[key] = None
        elif isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0 \
                or (key == "n" and v != int(v)):
            bad.append(f"{key}={v!r}")
        elif key == "n":
            out[key] = int(v)
        else:
            out[key] = round(float(v), DECIMALS)
    if bad:
        raise MnnEdgeError(f"{source}: metrics that are not measurements: {', '.join(bad)}")
    return out


def artifact_key(path: str | Path) -> str:
    """The name a benchmark record gets for the same file (see :func:`mnn_edge.bench.suite.artifact_name`)."""
    from mnn_edge.bench.suite import artifact_name
    from mnn_edge.runtime import SUFFIXES

    p = Path(path)
    if p.suffix.lower() not in SUFFIXES:  # e.g. mnn-eval's "baseline:zero": keep it as it is
        return str(path)
    return artifact_name(p, SUFFIXES[p.suffix.lower()])


def evaluate_set(artifacts: list[Path], samples: list, data: dict, batch: int = 8,
                 progress: bool = True) -> AccuracySet:
    """Evaluate every artifact on the same samples (helper B's metrics)."""
    from mnn_edge.evaluate.metrics import evaluate_artifact

    results = []
    for path in artifacts:
        res = evaluate_artifact(Path(path), samples, batch=batch, progress=progress)
        results.append(AccuracyResult(artifact_key(path), str(path), clean_metrics(res.to_dict())))
    return AccuracySet(tuple(results), data)


def write_accuracy(acc: AccuracySet, path: str | Path) -> None:
    write_text_atomic(path, json.dumps(acc.to_dict(), indent=2) + "\n")


def parse_accuracy(d: object, source: str) -> AccuracySet:
    """Our accuracy-set file, or one ``mnn-eval --json`` result (which must then name its ``artifact``)."""
    if not isinstance(d, dict):
        raise MnnEdgeError(f"{source}: expected a JSON object")
    if d.get("schema") == ACCURACY_SCHEMA:
        try:
            results = tuple(AccuracyResult(r["name"], r["artifact"], clean_metrics(r["metrics"], source))
                            for r in d["results"])
        except (KeyError, TypeError, AttributeError) as e:  # a result or its metrics not a table
            raise MnnEdgeError(f"{source}: malformed accuracy result ({e})") from e
        return AccuracySet(results, d.get("data", {}))
    if "mae" in d:  # a single mnn-eval --json result
        artifact = d.get("artifact")
        if not artifact:
            raise MnnEdgeError(f"{source}: this mnn-eval result does not say which artifact it measured; "
                               "pass it as NAME=FILE (NAME as in the benchmark table, e.g. pose.int8=eval.json)")
        return AccuracySet((AccuracyResult(artifact_key(artifact), str(artifact), clean_metrics(d, source)),),
                           {"source": source})
    raise MnnEdgeError(f"{source}: neither an accuracy set ({ACCURACY_SCHEMA}) nor an mnn-eval result")


def split_accuracy_spec(spec: str) -> tuple[str, Path]:
    """``FILE`` -> ("", FILE); ``NAME=FILE`` -> (NAME, FILE)."""
    name, _, file = spec.rpartition("=") if "=" in spec else ("", "", spec)
    return name, Path(file)


def load_accuracy(spec: str) -> AccuracySet:
    """``FILE`` or ``NAME=FILE`` (NAME overrides the artifact name for a single mnn-eval result)."""
    name, p = split_accuracy_spec(spec)
    d = read_json(p, "accuracy JSON")
    if name:
        if not isinstance(d, dict) or "mae" not in d:
            raise MnnEdgeError(f"{p}: NAME=FILE takes one mnn-eval --json result")
        return AccuracySet((AccuracyResult(name, str(d.get("artifact", "")), clean_metrics(d, str(p))),),
                           {"source": str(p)})
    return parse_accuracy(d, str(p))
