"""Score an artifact (or a constant baseline) on a dataset: the faces that count (:func:`load_samples`),
the run (:func:`evaluate`) and its console table; ``mnn-eval`` is the flags around it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from mnn_edge.errors import MnnEdgeError
from mnn_edge.evaluate.metrics import EvalResult, evaluate_runner


@dataclass(frozen=True)
class EvalConfig:
    data: Path  # dataset folder
    format: str  # reader
    artifact: Path | str | None  # .pt / .onnx / .plan, or a model URL (str); None with a baseline
    baseline: str | None  # zero | mean: a constant predictor instead of an artifact
    baseline_data: Path | None  # training set the mean baseline averages
    baseline_format: str  # its reader
    limit: int | None  # at most this many faces
    batch: int  # faces per inference call
    protocol: bool  # AFLW2000-3D protocol: drop faces with any |angle| > 99 deg
    device: str  # auto | cpu | cuda
    json_out: Path | None  # where to write the JSON result
    progress: bool
    per_face: Path | None = None  # JSON lines, one record per face
    subset: str | None = None  # train | heldout side of the person-disjoint split
    pose_labels: Path | None = None  # teacher labels file (mnn-data pseudo-label)
    frontal: float | None = None  # keep faces whose reference |yaw|, |pitch|, |roll| are all <= this


def load_samples(data: Path, fmt: str, limit: int | None, protocol: bool = True, subset: str | None = None,
                 pose_labels: Path | None = None, frontal: float | None = None) -> list:
    """The faces to score: the reader's, after the AFLW2000-3D protocol and the ``frontal`` filter
    (both before ``limit``, so N means N faces that count)."""
    from mnn_edge.data.readers import aflw2000_protocol, read_dataset
    from mnn_edge.evaluate.metrics import frontal_only

    filtered = (protocol and fmt == "aflw2000") or frontal is not None
    samples = read_dataset(data, fmt, None if filtered else limit, subset=subset, pose_labels=pose_labels)
    if protocol and fmt == "aflw2000":
        samples = aflw2000_protocol(samples)
        if not samples:
            raise MnnEdgeError(f"{data}: no face is left after the AFLW2000-3D protocol (|angle| <= 99)")
    if frontal is not None:
        samples = frontal_only(samples, frontal)
        if not samples:
            raise MnnEdgeError(f"{data}: no face has pose labels within +-{frontal} degrees (--frontal)")
    return samples[:limit]


def evaluate(cfg: EvalConfig) -> EvalResult:
    """Score the artifact (or the constant baseline) on the configured faces."""
    samples = load_samples(cfg.data, cfg.format, cfg.limit, cfg.protocol, cfg.subset, cfg.pose_labels, cfg.frontal)
    if cfg.baseline is not None:
        from mnn_edge.evaluate.baseline import mean_baseline, zero_baseline

        runner = (zero_baseline() if cfg.baseline == "zero"
                  else mean_baseline(load_samples(cfg.baseline_data, cfg.baseline_format, None, False)))
        res = evaluate_runner(runner, samples, batch=cfg.batch, progress=cfg.progress)
        res.artifact = f"baseline:{cfg.baseline}" + (f" of {cfg.baseline_data}" if cfg.baseline_data else "")
    else:
        from mnn_edge.runtime import open_runner

        with open_runner(cfg.artifact, device=cfg.device) as runner:
            res = evaluate_runner(runner, samples, batch=cfg.batch, progress=cfg.progress)
            res.extra["runner"] = runner.describe()
    res.data, res.format = str(cfg.data), cfg.format
    if cfg.subset is not None:
        res.extra["subset"] = cfg.subset
    if cfg.frontal is not None:
        res.extra["frontal_deg"] = cfg.frontal
    return res


def format_table(res: EvalResult) -> str:
    """The console table ``mnn-eval`` prints."""
    def num(v: float, scale: float = 1.0, unit: str = "") -> str:
        return "n/a" if not math.isfinite(v) else f"{v * scale:.2f}{unit}"

    rows = [
        ("artifact", res.artifact + (f" ({res.extra['runner']})" if "runner" in res.extra else "")),
        ("data", f"{res.data} [{res.format}{', ' + res.extra['subset'] if 'subset' in res.extra else ''}], "
                 f"{res.n} faces" + (f" within +-{res.extra['frontal_deg']:g} deg" if "frontal_deg" in res.extra
                                     else "")),
        ("MAE yaw / pitch / roll", f"{num(res.mae_yaw)} / {num(res.mae_pitch)} / {num(res.mae_roll)} deg"
                                   f"  ({res.n_pose} faces, vs {res.pose_reference or 'no labels'})"),
        ("MAE mean", num(res.mae, unit=" deg")),
        ("mean |predicted| y / p / r", f"{num(res.pred_abs_yaw)} / {num(res.pred_abs_pitch)} / "
                                       f"{num(res.pred_abs_roll)} deg"),
        ("NME inter-ocular", num(res.nme, 100, " %") + f"  ({res.n_landmarks} faces with landmarks)"),
        ("NME box", num(res.nme_box, 100, " %")),
        ("visibility accuracy", num(res.vis_acc, 100, " %") + f"  ({res.n_vis} labelled points)"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
