"""Training configuration: frozen dataclasses built from defaults < TOML file < command-line flags.

A schedule is a list of stages over the run's *progress* (0 -> 1). Progress is the fraction of
the planned steps done or, when a time budget is set, the fraction of the budget used, whichever
is larger: the cosine learning rate and the stage boundaries then fit whatever the machine manages
in the time given, and a budget-limited run still ends at a low learning rate.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from mnn_edge.artifact import DEFAULT_NUM_LANDMARKS, check_num_landmarks
from mnn_edge.data.augment import Augment
from mnn_edge.data.readers import DataSource
from mnn_edge.data.sample import FORMATS
from mnn_edge.errors import MnnEdgeError
from mnn_edge.train.losses import LossWeights


@dataclass(frozen=True)
class Stage:
    """One phase of the schedule: which losses count, and which modules are frozen."""

    name: str
    until: float  # the stage runs while progress < until (the last stage runs to the end)
    weights: LossWeights = LossWeights()
    freeze: tuple[str, ...] = ()  # parameter-name prefixes kept fixed in this stage


PRESETS: dict[str, tuple[Stage, ...]] = {
    # Every task from the first step.
    "all": (Stage("all", 1.0),),
    # The paper's recipe: pre-train with landmarks, then refine all tasks.
    "paper": (Stage("landmarks", 0.5, LossWeights(ed=0.0, ae=0.0, ce_h=1.0, ce_v=0.0)),
              Stage("all", 1.0)),
    # For a CPU-only budget: the pose heads need only the encoder (about 40% of the full model's
    # compute), so most of the time goes to pose with the two 256/128 px stages frozen at their
    # random init (no backward through the costliest layers), then every task with all layers.
    "cpu-starter": (Stage("pose", 0.7, LossWeights(ed=1.0, ae=1.0, ce_h=0.0, ce_v=0.0),
                          freeze=("encoder.stages.stage_9.", "encoder.stages.stage_8.")),
                    Stage("all", 1.0)),
}


@dataclass(frozen=True)
class Source(DataSource):
    """One training dataset of a mixed run, drawn with probability ``weight / sum(weights)``."""

    weight: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (self.weight > 0 and math.isfinite(self.weight)):
            raise MnnEdgeError(f"source {self.data}: weight must be a positive number, got {self.weight}")


@dataclass(frozen=True)
class TrainConfig:
    data: Path | None = None  # training set folder (one source; or use `sources`)
    format: str = "synthetic"  # reader, one of mnn_edge.data.sample.FORMATS
    subset: str | None = None  # train | heldout side of --data's person-disjoint split
    pose_labels: Path | None = None  # teacher pose labels for --data
    sources: tuple[Source, ...] = ()  # several datasets with sampling weights (instead of data/format)
    val_data: Path | None = None  # validation folder (None: no validation)
    val_format: str | None = None  # reader of val_data (default: format)
    val_subset: str | None = None  # train | heldout side of val_data's person-disjoint split
    val_pose_labels: Path | None = None  # teacher pose labels for val_data
    out: Path = Path("runs/train")  # run folder: last.pt, model_fp16.pt, log.jsonl
    limit: int | None = None  # read at most this many training faces
    val_limit: int | None = 64  # validate on at most this many faces (each costs a forward pass)
    num_landmarks: int = DEFAULT_NUM_LANDMARKS
    batch: int = 8
    epochs: int = 10
    epoch_steps: int = 0  # steps per "epoch" (validation + log cadence); 0 = one pass over the data
    lr: float = 1e-3  # AdamW peak learning rate
    min_lr_frac: float = 0.02  # cosine floor, as a fraction of lr
    warmup_steps: int = 20  # linear warm-up
    weight_decay: float = 1e-4
    grad_clip: float = 5.0  # max gradient norm (0 = off)
    sigma: float = 2.0  # std of the L_CE(h) target Gaussian, crop px
    schedule: tuple[Stage, ...] = PRESETS["all"]
    augment: Augment | None = Augment()  # None = no augmentation
    device: str = "auto"  # auto | cpu | cuda
    amp: bool = True  # float16 autocast + grad scaling (CUDA only; ignored on CPU)
    channels_last: bool = True  # NHWC weights and inputs (bench/train_step_layout.py measures it)
    workers: int = 0  # DataLoader worker processes
    threads: int = 0  # torch CPU threads (0 = torch's default)
    seed: int = 0
    max_minutes: float | None = None  # time budget of the whole run (resumes continue its clock)
    save_minutes: float = 10.0  # write last.pt at least this often
    resume: Path | None = None  # checkpoint (last.pt) to continue from
    init: Path | None = None  # start from these weights (any MNN checkpoint), fresh optimizer and clock
    progress: bool = True  # tqdm bar
    force: bool = False  # start afresh even if the run folder already holds a checkpoint

    def __post_init__(self) -> None:
        if (self.data is None) == (not self.sources):
            raise MnnEdgeError("give the training data once: --data DIR (data = \"DIR\"), or [[sources]] tables "
                               "in the config for a mixed run, not both")
        for name, fmt in (("format", self.format), ("val_format", self.val_format)):
            if fmt is not None and fmt not in FORMATS:
                raise MnnEdgeError(f"{name} '{fmt}' is not one of {', '.join(FORMATS)}")
        if self.batch < 2:
            # The stage-1 BatchNorm sees one 1x1 value per channel and image: training needs two.
            raise MnnEdgeError(f"batch must be >= 2 for training (BatchNorm at the 1x1 stage), got {self.batch}")
        if self.epochs < 1:
            raise MnnEdgeError("epochs must be >= 1")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise MnnEdgeError(f"lr must be a positive number, got {self.lr}")
        if not (math.isfinite(self.sigma) and self.sigma > 0):
            raise MnnEdgeError(f"sigma (the heatmap target's std in px) must be a positive number, got {self.sigma}")
        for name in ("weight_decay", "grad_clip", "warmup_steps", "epoch_steps", "workers", "threads"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise MnnEdgeError(f"{name} must be >= 0, got {value}")
        if not 0 <= self.min_lr_frac <= 1:
            raise MnnEdgeError(f"min_lr_frac must be in [0, 1], got {self.min_lr_frac}")
        check_num_landmarks(self.num_landmarks)
        for name in ("limit", "val_limit"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise MnnEdgeError(f"{name} must be >= 1, got {value}")
        if not (math.isfinite(self.save_minutes) and self.save_minutes > 0):
            raise MnnEdgeError(f"save_minutes must be positive, got {self.save_minutes}")
        if not self.schedule:
            raise MnnEdgeError("the schedule has no stages")
        if self.device not in ("auto", "cpu", "cuda"):
            raise MnnEdgeError(f"device must be auto, cpu or cuda, got '{self.device}'")
        if self.init is not None and self.resume is not None:
            raise MnnEdgeError("init and resume exclude each other: resume continues a run (weights, optimizer, "
                               "clock), init starts a new run from a checkpoint's weights")
        if self.max_minutes is not None and not (math.isfinite(self.max_minutes) and self.max_minutes > 0):
            raise MnnEdgeError(f"max_minutes must be positive, got {self.max_minutes}")

    def train_sources(self) -> tuple[Source, ...]:
        """The run's datasets: ``sources``, or the one given by data/format/subset/pose_labels/limit."""
        if self.sources:
            return self.sources
        return (Source(data=self.data, format=self.format, subset=self.subset, pose_labels=self.pose_labels,
                       limit=self.limit),)

    def val_source(self) -> DataSource | None:
        if self.val_data is None:
            return None
        return DataSource(data=self.val_data, format=self.val_format or self.format, subset=self.val_subset,
                          pose_labels=self.val_pose_labels, limit=self.val_limit)

    def stage_at(self, progress: float) -> Stage:
        for stage in self.schedule:
            if progress < stage.until:
                return stage
        return self.schedule[-1]

    def to_record(self) -> dict:
        """Builtin types only (stored in checkpoints, which load with weights_only=True)."""
        def clean(v):
            if isinstance(v, Path):
                return str(v)
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return [clean(x) for x in v]
            return v
        return clean(asdict(self))


# Resident memory one training step adds per face of the batch, measured with mnn-train on CPU
# (fp32, 68 landmarks, 2 threads): every task (the decoder's 256x256 activations kept for
# backward) 1.8 / 5.8 / 11.1 GB peak at batch 2 / 8 / 16, i.e. 0.67 GB a face; the encoder-only
# pose stage of cpu-starter (256/128 px stages frozen) 0.63 / 0.93 GB at batch 2 / 8, 49 MB a face.
# Rounded well down (the heatmaps scale with the landmark count; 29-point COFW runs hold fewer):
# the check refuses only a batch that cannot fit, never one that might.
STEP_BYTES_PER_FACE_DECODER = 500e6
STEP_BYTES_PER_FACE_ENCODER = 40e6
# Not measured on a GPU here: float16 activations (AMP) and cuDNN's leaner buffers are assumed to
# need at least a quarter of the CPU's fp32 figure, deliberately low for the same reason.
GPU_SHARE_OF_CPU_BYTES = 0.25


def step_bytes_per_face(stage: Stage) -> float:
    """A lower bound of one training step's memory per face in ``stage``: a stage that trains the
    decoder with nothing frozen keeps every activation for backward."""
    return STEP_BYTES_PER_FACE_DECODER if stage.weights.needs_decoder and not stage.freeze \
        else STEP_BYTES_PER_FACE_ENCODER


def check_step_memory(cfg: TrainConfig, device_type: str, memory_bytes: float | None) -> None:
    """Refuse, before any data is read, a batch whose training step cannot fit in the device's
    memory (``memory_bytes``: RAM on CPU, the GPU's memory on CUDA; None = unknown, no check):
    ``batch = 100000`` was an out-of-memory kill after the data had been read."""
    if memory_bytes is None:
        return
    stage = max(cfg.schedule, key=step_bytes_per_face)
    per_face = step_bytes_per_face(stage) * (GPU_SHARE_OF_CPU_BYTES if device_type == "cuda" else 1.0)
    if cfg.batch * per_face > memory_bytes:
        where = "this GPU has" if device_type == "cuda" else "this machine has"
        raise MnnEdgeError(f"batch {cfg.batch} needs at least {cfg.batch * per_face / 1e9:.0f} GB for one training "
                           f"step (stage '{stage.name}', {per_face / 1e6:.0f} MB a face) but {where} "
                           f"{memory_bytes / 1e9:.0f} GB: use batch <= {max(int(memory_bytes // per_face), 2)}")


def parse_stages(value) -> tuple[Stage, ...]:
    """A preset name, or a list of tables ``{name, until, weights = {ed, ae, ce_h, ce_v, lnd, mirror}, freeze}``."""
    if isinstance(value, str):
        if value not in PRESETS:
            raise MnnEdgeError(f"unknown schedule preset '{value}': expected one of {', '.join(PRESETS)}")
        return PRESETS[value]
    stages = []
    for i, t in enumerate(value):
        if not isinstance(t, dict):
            raise MnnEdgeError(f"schedule stage {i}: a table expected (name, until, weights, freeze), got {t!r}")
        try:
            w = LossWeights(**t.get("weights", {}))
            stages.append(Stage(name=str(t.get("name", f"stage{i}")), until=float(t["until"]), weights=w,
                                freeze=tuple(t.get("freeze", ()))))
        except (KeyError, TypeError, ValueError) as e:
            raise MnnEdgeError(f"schedule stage {i}: {e} (expected name, until, "
                               "weights = {ed, ae, ce_h, ce_v, lnd, mirror}, freeze)") from e
    return tuple(stages)


def parse_sources(value) -> tuple[Source, ...]:
    """``[[sources]]`` tables: ``{data, format, weight, subset, pose_labels, limit}``."""
    if not isinstance(value, list) or not value:
        raise MnnEdgeError("sources must be a non-empty list of [[sources]] tables")
    known = {f.name for f in fields(Source)}
    out = []
    for i, t in enumerate(value):
        if not isinstance(t, dict) or "data" not in t:
            raise MnnEdgeError(f"sources[{i}]: a table with at least data = \"DIR\" expected")
        unknown = sorted(set(t) - known)
        if unknown:
            raise MnnEdgeError(f"sources[{i}]: unknown key(s) {', '.join(unknown)} "
                               f"(expected {', '.join(sorted(known))})")
        kw = dict(t)
        kw["data"] = Path(kw["data"]).expanduser()
        if kw.get("pose_labels") is not None:
            kw["pose_labels"] = Path(kw["pose_labels"]).expanduser()
        if "weight" in kw:
            kw["weight"] = float(kw["weight"])
        out.append(Source(**kw))
    return tuple(out)


def parse_augment(value) -> Augment | None:
    if value is False or value is None:
        return None
    if value is True:
        return Augment()
    try:
        kw = dict(value)
        if "scale_range" in kw:
            if not (isinstance(kw["scale_range"], list) and len(kw["scale_range"]) == 2
                    and all(isinstance(v, int | float) and not isinstance(v, bool) for v in kw["scale_range"])):
                raise MnnEdgeError(f"[augment] scale_range must be two numbers [lo, hi], got {kw['scale_range']!r}")
            kw["scale_range"] = tuple(kw["scale_range"])
        return Augment(**kw)
    except (TypeError, ValueError) as e:
        raise MnnEdgeError(f"[augment]: {e}") from e


def _kind(annotation: str) -> str:
    """What a TOML value of a TrainConfig field must be, from the field's annotation."""
    if annotation.startswith(("Path", "str")):
        return "text"
    for kind in ("bool", "float", "int"):
        if annotation.startswith(kind):
            return kind
    return "other"  # sources, schedule, augment: their own parsers check them


def _type_problems(values: dict, cls: type = TrainConfig, where: str = "") -> list[str]:
    """One line per file value of the wrong type (TOML has types; flags are typed by argparse),
    checked against the fields of ``cls``; ``where`` prefixes the key (``sources[0].``)."""
    kinds = {f.name: (_kind(str(f.type)), "None" in str(f.type)) for f in fields(cls)}
    wanted = {"text": "a string in quotes", "bool": "true or false", "float": "a number", "int": "a whole number"}
    problems = []
    for key, value in values.items():
        kind, optional = kinds.get(key, ("other", False))
        if kind == "other" or (value is None and optional):
            continue
        ok = {"text": isinstance(value, str), "bool": isinstance(value, bool),
              "float": isinstance(value, int | float) and not isinstance(value, bool),
              "int": isinstance(value, int) and not isinstance(value, bool)}[kind]
        if not ok:
            problems.append(f"{where}{key} must be {wanted[kind]}, got {value!r} ({type(value).__name__})")
    if cls is not TrainConfig:
        return problems
    for i, table in enumerate(values.get("sources") or []):
        if isinstance(table, dict):  # [[sources]] tables are typed like the top level (data = 5 was a TypeError)
            problems += _type_problems(table, Source, f"sources[{i}].")
    if isinstance(values.get("augment"), dict):  # flip_prob = "yes" was "'<=' not supported between ..."
        problems += _type_problems(values["augment"], Augment, "augment.")
    if "schedule" in values and not isinstance(values["schedule"], str | list):
        got = type(values["schedule"]).__name__
        problems.append(f"schedule must be a preset name or [[schedule]] tables, got {got}")
    if "sources" in values and not isinstance(values["sources"], list):
        problems.append(f"sources must be [[sources]] tables, got {type(values['sources']).__name__}")
    if "augment" in values and not isinstance(values["augment"], bool | dict):
        problems.append(f"augment must be true, false or an [augment] table, got {type(values['augment']).__name__}")
    return problems


def build_config(file_values: dict, overrides: dict) -> TrainConfig:
    """Merge TOML values and flag overrides (None = not given) into a checked TrainConfig: unknown
    keys and values of the wrong type are all reported at once, one line each, before any work."""
    known = {f.name for f in fields(TrainConfig)}
    given = set(file_values) | {k for k, v in overrides.items() if v is not None}
    unknown = sorted(given - known)
    if unknown:
        raise MnnEdgeError(f"unknown training option(s): {', '.join(unknown)}")
    problems = _type_problems(file_values)
    if problems:
        raise MnnEdgeError(f"the training config has {len(problems)} value(s) of the wrong type:\n  "
                           + "\n  ".join(problems))
    values = {**file_values, **{k: v for k, v in overrides.items() if v is not None}}
    if "data" not in values and "sources" not in values:
        raise MnnEdgeError("no training data: pass --data DIR, or set data = \"DIR\" or [[sources]] in the config file")
    for key in ("data", "val_data", "out", "resume", "init", "pose_labels", "val_pose_labels"):
        if values.get(key) is not None:
            values[key] = Path(values[key]).expanduser()
    if "sources" in values:
        values["sources"] = parse_sources(values["sources"])
    if "schedule" in values:
        values["schedule"] = parse_stages(values["schedule"])
    if "augment" in values:
        values["augment"] = parse_augment(values["augment"])
    return TrainConfig(**values)


def with_overrides(cfg: TrainConfig, **changes) -> TrainConfig:
    return replace(cfg, **changes)


__all__ = ["PRESETS", "Source", "Stage", "TrainConfig", "build_config", "check_step_memory", "parse_sources",
           "parse_stages"]
