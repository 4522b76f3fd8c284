"""Join benchmark records and accuracy results into the report's rows: one row per artifact and device."""

from __future__ import annotations

from dataclasses import dataclass

from mnn_edge.artifact import ArtifactName
from mnn_edge.bench.schema import BenchRecord, BenchRun
from mnn_edge.report.accuracy import AccuracyResult, AccuracySet

MODEL_LABEL = {"pose": "encoder-only", "full": "full"}
PRECISION_ORDER = {"fp32": 0, "fp16": 1, "int8": 2}
BACKEND_LABEL = {"onnxruntime": "ONNX Runtime", "pytorch": "PyTorch", "tensorrt": "TensorRT"}


@dataclass(frozen=True)
class ReportRow:
    name: str  # artifact name, e.g. "pose.int8"
    model: str  # "pose" | "full"
    precision: str  # "fp32" | "fp16" | "int8"
    flavour: str  # "cpu" | "trt" for int8
    backend: str
    device: str
    size_bytes: int | None
    batch1: BenchRecord | None  # latency at batch 1 (None: not benchmarked at batch 1)
    best: BenchRecord | None  # the batch size with the highest throughput
    ratio_fp32: float | None  # p50 at batch 1 / the same model's FP32 p50, same backend, device and run
    accuracy: AccuracyResult | None

    @property
    def precision_label(self) -> str:
        return f"{self.precision} ({self.flavour})" if self.flavour else self.precision

    @property
    def label(self) -> str:
        """Short label for the plot: 'enc int8 (cpu) ORT'."""
        backend = {"onnxruntime": "ORT", "pytorch": "torch", "tensorrt": "TRT"}.get(self.backend, self.backend)
        model = "enc" if self.model == "pose" else "full"
        return f"{model} {self.precision_label} {backend}" + ("" if self.device == "cpu" else f" {self.device}")

    @property
    def fps(self) -> float | None:
        return None if self.batch1 is None else self.batch1.throughput_ips

    def sort_key(self) -> tuple:
        return (0 if self.model == "pose" else 1, self.device != "cpu", self.device, self.backend,
                PRECISION_ORDER.get(self.precision, 9), self.flavour, self.name)


def _from_name(name: str) -> tuple[str, str, str]:
    """Model, precision, flavour of an accuracy-only row: accuracy files carry no artifact metadata, so
    the name grammar reads them (pose.int8-trt, mnn.fp16); a name outside it counts as a full FP32 model."""
    parsed = ArtifactName.parse(name)
    if parsed is None:
        return "full", "fp32", ""
    flavour = parsed.flavour.value if parsed.flavour is not None else ""
    return parsed.kind.value, parsed.precision.value, flavour


def build_rows(runs: list[BenchRun], accuracy: list[AccuracySet]) -> list[ReportRow]:
    """Every artifact seen in a benchmark or an accuracy file becomes one row (per device)."""
    acc: dict[str, AccuracyResult] = {}
    for a in accuracy:
        acc.update(a.by_name())  # a later file wins
    groups: dict[tuple[str, str], list[tuple[int, BenchRecord]]] = {}
    staged: dict[tuple[str, str], list[tuple[int, BenchRecord]]] = {}
    for i, run in enumerate(runs):
        for r in run.records:
            # end-to-end (breakdown) timings include pre/postprocessing: they get their own section
            # and stand in for the model latency only when an artifact has no plain timing at all
            (groups if r.breakdown is None else staged).setdefault((r.name, r.device), []).append((i, r))
    for key, recs in staged.items():
        groups.setdefault(key, recs)
    rows = []
    for (name, device), recs in groups.items():
        first = recs[-1][1]  # a later run of the same artifact wins
        b1 = [(i, r) for i, r in recs if r.batch == 1]
        batch1 = b1[-1] if b1 else None
        best = max(recs, key=lambda ir: ir[1].throughput_ips)[1]
        rows.append(ReportRow(name, first.model, first.precision, first.flavour, first.backend, device,
                              first.size_bytes, batch1[1] if batch1 else None, best,
                              _fp32_ratio(batch1, runs), acc.get(name)))
    seen = {r.name for r in rows}
    for name, a in acc.items():
        if name not in seen:
            model, precision, flavour = _from_name(name)
            backend = "tensorrt" if "@tensorrt" in name else ("pytorch" if "@pytorch" in name else "onnxruntime")
            rows.append(ReportRow(name, model, precision, flavour, backend, "cpu", None, None, None, None, a))
    return sorted(rows, key=ReportRow.sort_key)


def _fp32_ratio(batch1: tuple[int, BenchRecord] | None, runs: list[BenchRun]) -> float | None:
    """Only within one interleaved run: across runs the machine's state differs and the ratio means little."""
    if batch1 is None:
        return None
    i, rec = batch1
    for other in runs[i].records:
        if (other.batch == 1 and other.model == rec.model and other.precision == "fp32"
                and other.backend == rec.backend and other.device == rec.device):
            return rec.latency_ms.p50 / other.latency_ms.p50
    return None
