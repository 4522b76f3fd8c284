"""Which parts of the network does INT8 hurt? One node group at a time, against FP32.

``mnn-export --int8 --sensitivity`` quantizes one group (a network stage: ``encoder.stage_9`` ...
``encoder.stage_1``, ``decoder.stage_2`` ... ``decoder.stage_9``, ``fc_lnd``, ``fc_vis``), everything
else in float, runs it on a few calibration images and compares with the FP32 model's outputs:

* ``pose_mae``: mean |yaw, pitch, roll| difference in degrees. Against FP32 rather than labels, so
  no labelled data is needed; it bounds the MAE *increase* against labels from above (per face,
  |e_int8| - |e_fp32| <= |int8 - fp32|).
* ``nme``: mean landmark difference over the FP32 landmarks' inter-ocular distance (68 points;
  the landmark box size otherwise) — the full model only.

With ``--max-mae-increase X`` the fallback set is chosen greedily: starting from the full INT8
model, the group with the largest single-group ``pose_mae`` goes back to float, and so on until
the INT8 model's ``pose_mae`` is at most X (each step measured, not assumed additive).

Cost, why a group per stage and not a node: each candidate is one quantization (1-3 s) plus one
run over the images; with 8 images that is about 10 s per group for the full model on 2 cores,
~20 groups: 3-4 minutes (the encoder-only model: under a minute). One node at a time would be
~150 candidates. The CPU flavour is measured (fast); the chosen set applies to both flavours.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import onnx
from tqdm import tqdm

from mnn_edge.artifact import Flavour
from mnn_edge.fileio import write_text_atomic
from mnn_edge.quantize.calibration import CALIBRATED_OPS, RangeTable
from mnn_edge.quantize.qdq import QdqConfig, default_float_groups, prepare_fp32, quantize_qdq
from mnn_edge.runtime.chunks import infer_in_chunks
from mnn_edge.runtime.compare import compare_outputs

SENSITIVITY_IMAGES = 8
GROUP_PATTERNS = (
    (re.compile(r"/encoder/stage_(\d+)/"), "encoder.stage_{}"),
    (re.compile(r"/net/stage_(\d+)/"), "decoder.stage_{}"),
    (re.compile(r"/net/(fc_\w+)/"), "{}"),
)


def group_of(node_name: str) -> str:
    for pattern, fmt in GROUP_PATTERNS:
        m = pattern.search(node_name)
        if m:
            return fmt.format(m.group(1))
    return "other"


def node_groups(model: onnx.ModelProto) -> dict[str, list[str]]:
    """Group -> quantizable node names (the default float groups excluded), in graph order."""
    always_float = {n for g in default_float_groups(model).values() for n in g}
    groups: dict[str, list[str]] = {}
    for n in model.graph.node:
        if n.op_type in CALIBRATED_OPS and n.name not in always_float:
            groups.setdefault(group_of(n.name), []).append(n.name)
    return groups


@dataclass(frozen=True)
class Drift:
    pose_mae: float  # degrees, mean |d yaw, d pitch, d roll| against FP32
    nme: float | None  # landmark error / inter-ocular (or box) distance, against FP32; None: no landmarks


def drift(ref: Mapping[str, np.ndarray], got: Mapping[str, np.ndarray]) -> Drift:
    d = compare_outputs(ref, got)
    return Drift(d.pose_deg_mean, d.landmark_nme)


@dataclass
class SensitivityReport:
    model: str
    images: int
    full_int8: Drift
    groups: dict[str, Drift] = field(default_factory=dict)  # group -> drift with only that group in INT8
    group_nodes: dict[str, int] = field(default_factory=dict)
    target_mae: float | None = None
    fallback: list[str] = field(default_factory=list)  # groups kept in float to meet the target
    steps: list[tuple[str, Drift]] = field(default_factory=list)  # after moving each group to float
    fallback_nodes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["steps"] = [{"to_float": g, **asdict(dr)} for g, dr in self.steps]
        return d

    def to_markdown(self) -> str:
        lines = [f"### {self.model}: INT8 sensitivity ({self.images} images, CPU flavour, against FP32)", "",
                 f"Full INT8: pose MAE {self.full_int8.pose_mae:.3f} deg" +
                 (f", NME {self.full_int8.nme * 100:.3f} %" if self.full_int8.nme is not None else ""), "",
                 "| group (only it in INT8) | nodes | pose MAE [deg] | NME [%] |", "|---|---:|---:|---:|"]
        for g, dr in sorted(self.groups.items(), key=lambda kv: -kv[1].pose_mae):
            nme = f"{dr.nme * 100:.3f}" if dr.nme is not None else "-"
            lines.append(f"| {g} | {self.group_nodes[g]} | {dr.pose_mae:.3f} | {nme} |")
        if self.target_mae is not None:
            lines += ["", f"Target pose MAE <= {self.target_mae:g} deg: "
                      + (f"kept in float: {', '.join(self.fallback)}" if self.fallback else "met by full INT8")]
            for g, dr in self.steps:
                lines.append(f"- + {g} in float -> pose MAE {dr.pose_mae:.3f} deg")
        return "\n".join(lines) + "\n"


def _run(path: Path, inputs: np.ndarray) -> dict[str, np.ndarray]:
    from mnn_edge.runtime.onnxruntime_backend import OnnxRuntimeRunner

    with OnnxRuntimeRunner(path) as runner:
        # 4 rows a call, as the drift numbers were always measured (a batch's memory stays small)
        return infer_in_chunks(runner, inputs, max_rows=4)


def analyse(prepared: Path, table: RangeTable, inputs: np.ndarray, target_mae: float | None = None,
            progress: bool = True) -> SensitivityReport:
    """Sensitivity of the pre-processed FP32 model ``prepared`` to INT8, group by group."""
    model = onnx.load(str(prepared), load_external_data=False)
    groups = node_groups(model)
    ref = _run(prepared, inputs)
    with tempfile.TemporaryDirectory(prefix="mnn-sens-") as tmp:
        def measure(name: str, **cfg) -> Drift:
            path = Path(tmp) / f"{name}.onnx"
            quantize_qdq(prepared, path, table, QdqConfig(Flavour.CPU, **cfg))
            d = drift(ref, _run(path, inputs))
            path.unlink()
            return d

        report = SensitivityReport(model=table.model, images=len(inputs), full_int8=measure("full"),
                                   target_mae=target_mae, group_nodes={g: len(v) for g, v in groups.items()})
        for g, nodes in tqdm(groups.items(), desc=f"sensitivity {table.model}", unit="group", disable=not progress):
            report.groups[g] = measure("one", only_nodes=tuple(nodes))
        if target_mae is not None:
            current = report.full_int8
            for g in sorted(report.groups, key=lambda k: -report.groups[k].pose_mae):
                if current.pose_mae <= target_mae:
                    break
                report.fallback.append(g)
                floats = tuple(n for f in report.fallback for n in groups[f])
                current = measure("fallback", extra_float_nodes=floats)
                report.steps.append((g, current))
            report.fallback_nodes = [n for f in report.fallback for n in groups[f]]
    return report


def write_reports(reports: list[SensitivityReport], out_dir: Path) -> tuple[Path, Path]:
    """``sensitivity.json`` and ``sensitivity.md`` in ``out_dir``."""
    js, md = Path(out_dir) / "sensitivity.json", Path(out_dir) / "sensitivity.md"
    write_text_atomic(js, json.dumps({r.model: r.to_dict() for r in reports}, indent=1) + "\n")
    write_text_atomic(md, "# INT8 sensitivity\n\n" + "\n".join(r.to_markdown() for r in reports))
    return js, md


def run_sensitivity_for_export(fp32: Mapping[str, Path], out_dir: Path, qcfg, target_mae: float | None,
                               images: int = SENSITIVITY_IMAGES):
    """The ``--sensitivity`` step of mnn-export: calibrate (or reuse tables), analyse each model,
    write the reports, and return the QuantizeConfig that reuses the tables and keeps the chosen
    fallback groups in float."""
    from mnn_edge.quantize.variants import CalibrationInputs, load_fp32, range_table

    qcfg.check()
    reports = []
    extra = dict(qcfg.extra_float_nodes)
    inputs = CalibrationInputs(qcfg)
    with tempfile.TemporaryDirectory(prefix="mnn-sens-") as tmp:
        for m, src in fp32.items():
            meta = load_fp32(Path(src))
            prepared = prepare_fp32(src, Path(tmp) / f"{m}.prepared.onnx")
            images_in = inputs(meta, "--sensitivity needs images: add --calib DIR or --calib-synthetic N to --ranges")
            table, _ = range_table(m, meta, prepared, qcfg, inputs)
            report = analyse(prepared, table, images_in[:images], target_mae, qcfg.progress)
            reports.append(report)
            extra[m] = tuple(extra.get(m, ())) + tuple(report.fallback_nodes)
            print(report.to_markdown())
    js, md = write_reports(reports, out_dir)
    print(f"wrote {js} and {md}")
    ranges = qcfg.ranges or (qcfg.ranges_dir,)
    return replace(qcfg, ranges=tuple(ranges), extra_float_nodes=extra)
