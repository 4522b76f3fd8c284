"""One JSON schema for every benchmark result (ONNX Runtime, PyTorch, TensorRT; CPU or GPU).

``mnn-bench --json``, ``bench/quantization.py`` and ``bench/gpu_check`` all write a :class:`BenchRun`,
so ``mnn-report`` can merge results measured on different machines into one table. A run::

    {"schema": "mnn-edge-bench/1", "created": "2026-12-01T09:40:00Z", "tool": "mnn-bench",
     "machine": {...machine.machine_record()...}, "config": {"warmup": 10, "runs": 50, ...},
     "baseline": "pose.fp32" | null,
     "records": [{"name": "pose.int8", "artifact": "export/pose.int8.onnx", "model": "pose",
                  "precision": "int8", "flavour": "cpu", "backend": "onnxruntime", "device": "cpu",
                  "batch": 1, "size_bytes": 1234, "latency_ms": {n, mean, std, p50, p90, p99, min, max},
                  "throughput_ips": 25.1, "ratio_to_baseline": {"p50": 0.38, "mean": 0.39} | null,
                  "breakdown": {"stages": {stage: {n, mean, ...} | null}, "note": "..."} | null}]}

Latencies are per call of one batch, in milliseconds; throughput is images per second.
A breakdown's stages are :data:`mnn_edge.frame.BREAKDOWN_STAGES`.
``ratio_to_baseline`` divides this record's latency by the baseline's at the same batch size,
measured in the same interleaved run (so < 1 means faster than the baseline).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path

from mnn_edge.bench.timing import CaseTiming, LatencyStats
from mnn_edge.errors import MnnEdgeError
from mnn_edge.fileio import read_json, write_text_atomic

SCHEMA_VERSION = "mnn-edge-bench/1"


class Backend(str, Enum):
    ONNXRUNTIME = "onnxruntime"
    PYTORCH = "pytorch"
    TENSORRT = "tensorrt"
    REMOTE = "remote"  # a served model (grpc:// or http:// URL): the time includes the network and server


@dataclass(frozen=True)
class Breakdown:
    """Per-stage latency (ms per batch). A stage a backend cannot separate is None, and ``note`` says why."""

    stages: dict[str, LatencyStats | None]
    note: str = ""

    def to_dict(self) -> dict:
        return {"stages": {s: (None if v is None else v.to_dict()) for s, v in self.stages.items()},
                "note": self.note}

    @classmethod
    def from_dict(cls, d: dict) -> Breakdown:
        return cls({s: (None if v is None else LatencyStats.from_dict(v)) for s, v in d["stages"].items()},
                   d.get("note", ""))


@dataclass(frozen=True)
class BenchRecord:
    """One artifact at one batch size."""

    name: str  # display name, e.g. "pose.int8" or "mnn.fp16@trt"
    artifact: str  # path as given on the command line
    model: str  # "pose" (encoder-only) | "full"
    precision: str  # "fp32" | "fp16" | "int8"
    flavour: str  # INT8 Q/DQ flavour: "cpu" | "trt"; "" otherwise
    backend: str  # a Backend value
    device: str  # "cpu" or the GPU's name
    batch: int
    size_bytes: int  # artifact size on disk
    latency_ms: LatencyStats
    throughput_ips: float
    ratio_to_baseline: dict[str, float] | None = None  # {"p50": .., "mean": ..}
    breakdown: Breakdown | None = None

    def to_dict(self) -> dict:
        return {"name": self.name, "artifact": self.artifact, "model": self.model, "precision": self.precision,
                "flavour": self.flavour, "backend": self.backend, "device": self.device, "batch": self.batch,
                "size_bytes": self.size_bytes, "latency_ms": self.latency_ms.to_dict(),
                "throughput_ips": self.throughput_ips, "ratio_to_baseline": self.ratio_to_baseline,
                "breakdown": None if self.breakdown is None else self.breakdown.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> BenchRecord:
        return cls(name=d["name"], artifact=d["artifact"], model=d["model"], precision=d["precision"],
                   flavour=d.get("flavour", ""), backend=d["backend"], device=d["device"], batch=int(d["batch"]),
                   size_bytes=int(d["size_bytes"]), latency_ms=LatencyStats.from_dict(d["latency_ms"]),
                   throughput_ips=float(d["throughput_ips"]), ratio_to_baseline=d.get("ratio_to_baseline"),
                   breakdown=None if d.get("breakdown") is None else Breakdown.from_dict(d["breakdown"]))

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        """What identifies a row of the report: model, precision, flavour, backend, device."""
        return (self.model, self.precision, self.flavour, self.backend, self.device)


@dataclass(frozen=True)
class BenchRun:
    records: tuple[BenchRecord, ...]
    machine: dict
    config: dict
    baseline: str | None = None
    tool: str = "mnn-bench"
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))

    def to_dict(self) -> dict:
        return {"schema": SCHEMA_VERSION, "created": self.created, "tool": self.tool, "machine": self.machine,
                "config": self.config, "baseline": self.baseline, "records": [r.to_dict() for r in self.records]}


def record_from_timing(timing: CaseTiming, *, artifact: str | Path, model: str, precision: str, backend: str,
                       device: str = "cpu", flavour: str = "", size_bytes: int | None = None,
                       breakdown: Breakdown | None = None) -> BenchRecord:
    """Wrap a :class:`~mnn_edge.bench.timing.CaseTiming` as a record (what gpu_check calls too)."""
    size = size_bytes if size_bytes is not None else (Path(artifact).stat().st_size if Path(artifact).is_file() else 0)
    return BenchRecord(name=timing.name, artifact=str(artifact), model=model, precision=precision, flavour=flavour,
                       backend=Backend(backend).value, device=device, batch=timing.batch, size_bytes=size,
                       latency_ms=timing.stats, throughput_ips=timing.throughput, breakdown=breakdown)


def with_ratios(records: list[BenchRecord], baseline_name: str) -> list[BenchRecord]:
    """Fill ``ratio_to_baseline`` for every record, against the baseline record of the same batch."""
    from dataclasses import replace

    base = {r.batch: r for r in records if r.name == baseline_name}
    if not base:
        raise MnnEdgeError(f"baseline '{baseline_name}' is not among the benchmarked artifacts "
                           f"({', '.join(sorted({r.name for r in records}))})")
    out = []
    for r in records:
        b = base.get(r.batch)
        ratio = None if b is None else {"p50": r.latency_ms.p50 / b.latency_ms.p50,
                                        "mean": r.latency_ms.mean / b.latency_ms.mean}
        out.append(replace(r, ratio_to_baseline=ratio))
    return out


_REQUIRED_RECORD = {"name": str, "artifact": str, "model": str, "precision": str, "backend": str, "device": str,
                    "batch": int, "size_bytes": int, "latency_ms": dict, "throughput_ips": (int, float)}
_REQUIRED_STATS = ("n", "mean", "std", "p50", "p90", "p99", "min", "max")


def validate(d: object, source: str = "benchmark JSON") -> BenchRun:
    """Check ``d`` against the schema and build a :class:`BenchRun`; raise MnnEdgeError naming the first problem."""
    if not isinstance(d, dict):
        raise MnnEdgeError(f"{source}: expected a JSON object")
    if d.get("schema") != SCHEMA_VERSION:
        raise MnnEdgeError(f"{source}: schema is {d.get('schema')!r}, expected {SCHEMA_VERSION!r}")
    for key, typ in (("machine", dict), ("config", dict), ("records", list)):
        if not isinstance(d.get(key), typ):
            raise MnnEdgeError(f"{source}: '{key}' is missing or not a {typ.__name__}")
    for i, rec in enumerate(d["records"]):
        where = f"{source}: records[{i}]"
        if not isinstance(rec, dict):
            raise MnnEdgeError(f"{where} is not an object")
        for key, typ in _REQUIRED_RECORD.items():
            if not isinstance(rec.get(key), typ) or isinstance(rec.get(key), bool):
                raise MnnEdgeError(f"{where}: '{key}' is missing or has the wrong type")
        missing = [k for k in _REQUIRED_STATS if not isinstance(rec["latency_ms"].get(k), (int, float))]
        if missing:
            raise MnnEdgeError(f"{where}: latency_ms lacks {', '.join(missing)}")
        # json reads NaN and Infinity; a latency is a finite, non-negative time
        bad = [f"{k}={rec['latency_ms'][k]}" for k in _REQUIRED_STATS
               if not (math.isfinite(rec["latency_ms"][k]) and rec["latency_ms"][k] >= 0)]
        if bad:
            raise MnnEdgeError(f"{where}: latency_ms has values that are not times: {', '.join(bad)}")
        if rec["backend"] not in {b.value for b in Backend}:
            raise MnnEdgeError(f"{where}: unknown backend {rec['backend']!r}")
        if rec["batch"] < 1:
            raise MnnEdgeError(f"{where}: batch must be >= 1")
    records = tuple(BenchRecord.from_dict(r) for r in d["records"])
    return BenchRun(records=records, machine=d["machine"], config=d["config"], baseline=d.get("baseline"),
                    tool=d.get("tool", "?"), created=d.get("created", ""))


def write_run(run: BenchRun, path: str | Path) -> None:
    write_text_atomic(path, json.dumps(run.to_dict(), indent=2, sort_keys=False) + "\n")


def load_run(path: str | Path) -> BenchRun:
    return validate(read_json(path, "benchmark JSON"), str(path))
