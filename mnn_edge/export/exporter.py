"""Checkpoint -> ONNX artifacts, each checked against PyTorch before it is kept; then, on request,
their FP16/INT8 variants (:mod:`mnn_edge.quantize.variants`) and TensorRT plans.

The library behind ``mnn-export`` (whose module only parses flags) and ``mnn-report
--from-checkpoint`` (which calls :func:`run_export` in-process, not the command line).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from mnn_edge.artifact import (
    DEFAULT_MEAN,
    DEFAULT_NUM_LANDMARKS,
    DEFAULT_STD,
    MODEL_NAMES,
    ArtifactName,
    ModelKind,
    Precision,
    export_onnx_names,
    landmark_scheme_for,
)
from mnn_edge.artifact.triton import ServingConfig, check_triton_repo, write_triton_model
from mnn_edge.checkpoint import Checkpoint, load_checkpoint
from mnn_edge.errors import MnnEdgeError
from mnn_edge.export.onnx_export import export_onnx
from mnn_edge.fileio import atomic_path, claim_output, make_folder, refuse_existing
from mnn_edge.model.deploy import deploy_module
from mnn_edge.model.network import MNN, init_weights
from mnn_edge.quantize.variants import QuantizeConfig, planned_outputs
from mnn_edge.runtime.compare import float64_parity
from mnn_edge.runtime.inputs import random_input

PARITY_BATCHES = (1, 4)


@dataclass(frozen=True)
class SensitivityConfig:
    """--int8 --sensitivity: the per-group INT8 effect table (and the fallback choice)."""

    max_mae_increase: float | None = None  # degrees; choose float groups to meet it
    images: int = 8


@dataclass(frozen=True)
class EngineConfig:
    """--engine: also build TensorRT plans of what this run writes."""

    precisions: tuple[Precision, ...]
    recipe: Path | None = None  # engines/*.toml target recipe for those builds
    out_dir: Path | None = None  # where the plans (and the timing cache) go; None: the recipe's choice


@dataclass(frozen=True)
class TritonConfig:
    """--triton-repo: every written ONNX artifact also becomes a model of this Triton repository."""

    repo: Path
    serving: ServingConfig = ServingConfig()


@dataclass(frozen=True)
class ExportConfig:
    """What to export; each optional step (quantize, sensitivity, engines, Triton) is None when off."""

    checkpoint: Path | None  # None with random_init
    random_init: bool
    out: Path
    num_landmarks: int | None  # None: take L from the checkpoint
    keep_heatmaps: bool  # full model also outputs the (N, L, 256, 256) softmax maps
    force: bool  # overwrite existing artifacts
    quantize: QuantizeConfig | None = None  # --int8 / --fp16
    onnx: tuple[Path, ...] = ()  # quantize these FP32 exports instead of exporting a checkpoint
    sensitivity: SensitivityConfig | None = None
    allow_drift: bool = False  # keep a quantized artifact beyond compare.DRIFT_LIMIT (with a warning)
    engines: EngineConfig | None = None
    triton: TritonConfig | None = None
    triton_only: bool = False  # --triton-only: no export; the repository from the ONNX files already in out


def load_source(cfg: ExportConfig) -> Checkpoint:
    if cfg.random_init:
        print("WARNING: --random-init: exporting RANDOM WEIGHTS. These artifacts are for smoke tests and "
              "benchmarks only; their predictions mean nothing.", file=sys.stderr)
        n = DEFAULT_NUM_LANDMARKS if cfg.num_landmarks is None else cfg.num_landmarks
        model = MNN(n)
        init_weights(model, seed=0)
        return Checkpoint(model=model.eval(), mean=DEFAULT_MEAN, std=DEFAULT_STD,
                          landmark_scheme=landmark_scheme_for(n))
    return load_checkpoint(cfg.checkpoint, cfg.num_landmarks)


def check_parity(ckpt: Checkpoint, kind: ModelKind, path: Path, keep_heatmaps: bool,
                 name: str | None = None) -> list[str]:
    """Run the ONNX file and PyTorch (float32 and float64) on the same random batches; raise if any
    output strays from float64 further than float32 arithmetic allows (``runtime.compare.float64_parity``).

    ``name``: what the lines call the file (the final name while ``path`` is still a temporary)."""
    import copy

    from mnn_edge.runtime.onnxruntime_backend import OnnxRuntimeRunner

    module = deploy_module(ckpt.model, kind, keep_heatmaps)
    module64 = copy.deepcopy(module).double()
    lines = []
    with OnnxRuntimeRunner(path) as runner:
        for batch in PARITY_BATCHES:
            x = random_input(batch, seed=batch)
            with torch.inference_mode():
                ref32 = dict(zip(module.output_names, (t.numpy() for t in module(torch.from_numpy(x)))))
                ref64 = dict(zip(module.output_names,
                                 (t.numpy() for t in module64(torch.from_numpy(x).double()))))
            label = f"{name or path.name} batch {batch}"
            parity = float64_parity(ref32, ref64, runner.infer(x), label)
            lines.append(parity.line(label))
            if parity.failures():
                path.unlink(missing_ok=True)
                raise MnnEdgeError(f"{lines[-1]} — the exported file was removed")
    return lines


def export_fp32(cfg: ExportConfig, ckpt: Checkpoint) -> dict[ModelKind, Path]:
    """Write pose.onnx and mnn.onnx into cfg.out, each verified; returns their paths."""
    paths = {kind: cfg.out / ArtifactName(kind).onnx() for kind in MODEL_NAMES}
    refuse_existing(list(paths.values()), cfg.force)
    for kind, path in paths.items():
        heatmaps = cfg.keep_heatmaps and kind is ModelKind.FULL
        with atomic_path(path) as tmp:  # the final name only after the parity check passed
            export_onnx(ckpt, kind, tmp, keep_heatmaps=heatmaps)
            lines = check_parity(ckpt, kind, tmp, heatmaps, name=path.name)
        for line in lines:
            print(line)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return paths


def fp32_sources(cfg: ExportConfig) -> dict[str, Path]:
    """Stem -> FP32 ONNX for --onnx, the stem from each file's own metadata (a pose model is
    ``pose`` whatever the file is called, so ``odd/mypose.onnx`` gives ``pose.fp16.onnx``)."""
    import onnx

    from mnn_edge.artifact.onnx_io import get_metadata

    sources = {}
    for path in cfg.onnx:
        if not path.is_file():
            raise MnnEdgeError(f"--onnx {path}: no such file")
        try:
            meta = get_metadata(onnx.load(str(path), load_external_data=False))
        except Exception as e:  # protobuf's DecodeError and friends
            raise MnnEdgeError(f"--onnx {path} is not a loadable ONNX model: {str(e).splitlines()[0]}") from e
        if meta is None:
            raise MnnEdgeError(f"--onnx {path} has no mnn-edge metadata: give an FP32 file written by mnn-export")
        stem = MODEL_NAMES[meta.kind]
        if stem in sources:
            raise MnnEdgeError(f"--onnx gives two {stem} models ({sources[stem]} and {path}): give one of each")
        sources[stem] = path
    return sources


def refuse_existing_variants(cfg: ExportConfig, stems: list[str]) -> None:
    """Every FP16/INT8 output of this run (variants, range tables, sensitivity reports) is new, or --force."""

    reports = [cfg.out / "sensitivity.json", cfg.out / "sensitivity.md"] if cfg.sensitivity is not None else []
    refuse_existing(planned_outputs(stems, cfg.out, cfg.quantize) + reports, cfg.force)


def export_quantized(cfg: ExportConfig, fp32: dict[str, Path]) -> None:
    """The --int8 / --fp16 part: variants, range tables, TensorRT-compat and drift reports."""
    from mnn_edge.quantize.variants import drift_lines, print_summary, quantize_exports

    qcfg = cfg.quantize
    refuse_existing_variants(cfg, list(fp32))
    if cfg.sensitivity is not None:
        from mnn_edge.quantize.sensitivity import run_sensitivity_for_export

        sens = cfg.sensitivity
        qcfg = run_sensitivity_for_export(fp32, cfg.out, qcfg, sens.max_mae_increase, sens.images)
    result = quantize_exports(fp32, cfg.out, qcfg)
    print_summary(result)
    for stem, src in fp32.items():
        variants = [p for p in result.artifacts.values() if p.name.startswith(f"{stem}.")]
        for line in drift_lines(src, variants, allow_drift=cfg.allow_drift):
            print(line)


def run_export(cfg: ExportConfig) -> int:
    """:func:`export` holding the output folder: a second export into it is refused, not left to
    replace files the first is still writing (both used to print "wrote")."""
    if cfg.triton_only:
        return triton_from_existing(cfg)
    with claim_output(cfg.out, "export folder"):
        # Refusals come before the slow part, a bad checkpoint before anything is created, an
        # --out that is a file before the export: each in one line.
        if not cfg.onnx and cfg.quantize is not None:
            refuse_existing_variants(cfg, list(MODEL_NAMES.values()))
        ckpt = None if cfg.onnx else load_source(cfg)
        sources = fp32_sources(cfg) if cfg.onnx else None  # a wrong --onnx file: before the folder exists
        if cfg.triton is not None:
            stems = list(sources) if sources is not None else list(MODEL_NAMES.values())
            check_triton_repo(cfg.triton.repo, triton_candidates(cfg, stems), cfg.force)
        make_folder(cfg.out)
        return export(cfg, ckpt, sources)


def export(cfg: ExportConfig, ckpt: Checkpoint | None, sources: dict[str, Path] | None = None) -> int:
    """Export (or, with ``sources`` from --onnx, only quantize) and write what the flags ask for."""
    if sources is not None:
        export_quantized(cfg, sources)
        if cfg.triton is not None:
            add_to_triton(cfg)
        return 0
    paths = export_fp32(cfg, ckpt)
    for line in check_fp32_compat(paths.values()):
        print(line)
    if cfg.quantize is not None:
        export_quantized(cfg, {MODEL_NAMES[kind]: path for kind, path in paths.items()})
    if cfg.engines is not None:
        build_engines(cfg)
    if cfg.triton is not None:
        add_to_triton(cfg)
    return 0


def triton_candidates(cfg: ExportConfig, stems: list[str]) -> list[Path]:
    """The ONNX files --triton-repo will serve: those this run writes for ``stems`` and those
    already in --out."""
    planned = [] if cfg.onnx else [cfg.out / f"{s}.onnx" for s in stems]
    if cfg.quantize is not None:
        planned += [p for p in planned_outputs(stems, cfg.out, cfg.quantize) if p.suffix == ".onnx"]
    existing = [cfg.out / n for n in export_onnx_names() if (cfg.out / n).is_file()]
    return sorted(set(planned) | set(existing))


def triton_from_existing(cfg: ExportConfig) -> int:
    """--triton-only: serve what an earlier export left in --out, without exporting again (re-exporting
    would refuse the existing files or, with --force, redo minutes of export and calibration)."""
    if not cfg.out.is_dir():
        raise MnnEdgeError(f"export folder {cfg.out} does not exist; export first (mnn-export --out {cfg.out})")
    with claim_output(cfg.out, "export folder"):  # not while another export is writing there
        existing = [cfg.out / n for n in export_onnx_names() if (cfg.out / n).is_file()]
        if not existing:
            raise MnnEdgeError(f"{cfg.out} holds no exported ONNX artifact (pose.onnx, mnn.int8.onnx, ...); "
                               "export first")
        check_triton_repo(cfg.triton.repo, existing, cfg.force)
        add_to_triton(cfg)
    return 0


def add_to_triton(cfg: ExportConfig) -> None:
    """--triton-repo: every ONNX artifact in the output folder becomes one model of the repository."""
    for name in export_onnx_names():
        if (cfg.out / name).is_file():
            folder = write_triton_model(cfg.out / name, cfg.triton.repo, cfg.triton.serving, force=cfg.force)
            print(f"wrote {folder}/config.pbtxt + 1/model.onnx")


def build_engines(cfg: ExportConfig) -> None:
    """--engine: the mnn-build step on what this run just wrote."""
    from mnn_edge.runtime.tensorrt.build import build_engines_for_export
    from mnn_edge.runtime.tensorrt.config import BuildConfig, config_from_recipe

    eng = cfg.engines
    build = config_from_recipe(eng.recipe) if eng.recipe else BuildConfig()
    if eng.out_dir is not None:
        build = build.with_(out_dir=eng.out_dir, timing_cache=eng.out_dir / "timing.cache")
    build = build.with_(force=cfg.force)
    for plan in build_engines_for_export(cfg.out, eng.precisions, build):
        print(f"wrote {plan} ({plan.stat().st_size / 1e6:.1f} MB) + {plan.with_suffix('.json').name}")


def check_fp32_compat(paths) -> list[str]:
    from mnn_edge.runtime.tensorrt.compat import check_trt_compat, format_report

    lines = []
    for path in paths:
        problems = check_trt_compat(path)
        lines.append(("WARNING: " if problems else "") + format_report(path, problems))
    return lines
