"""The artifact file-name grammar, both ways: ``<model>[.<tag>].onnx`` and ``<model>.<precision>.plan``.

``model`` is ``pose`` (encoder-only) or ``mnn`` (full); the ONNX ``tag`` is empty (FP32), ``fp16``,
``int8`` (ONNX Runtime CPU flavour) or ``int8-trt`` (TensorRT flavour). Names are how people and
the pipeline find an artifact's siblings; what a file *is* (precision, flavour, model) is read from
its metadata, never from its name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mnn_edge.artifact.metadata import Flavour, ModelKind, Precision

MODEL_NAMES = {ModelKind.POSE: "pose", ModelKind.FULL: "mnn"}
_INT8_TAGS = {Flavour.CPU: "int8", Flavour.TRT: "int8-trt"}


@dataclass(frozen=True)
class ArtifactName:
    kind: ModelKind
    precision: Precision = Precision.FP32
    flavour: Flavour | None = None  # INT8 ONNX files only: which Q/DQ flavour

    def __post_init__(self) -> None:
        if self.flavour is not None and self.precision is not Precision.INT8:
            raise ValueError(f"an INT8 flavour belongs to INT8 artifacts only, not {self.precision.value}")

    @property
    def model(self) -> str:
        return MODEL_NAMES[self.kind]

    @property
    def tag(self) -> str:
        if self.precision is Precision.INT8:
            return _INT8_TAGS[self.flavour or Flavour.CPU]
        return "" if self.precision is Precision.FP32 else self.precision.value

    @property
    def stem(self) -> str:
        """``pose``, ``pose.fp16``, ``mnn.int8``, ``mnn.int8-trt``: the name records and reports use."""
        return f"{self.model}.{self.tag}" if self.tag else self.model

    def onnx(self) -> str:
        return f"{self.stem}.onnx"

    def plan(self) -> str:
        """TensorRT engines are named by precision alone: one engine per model and precision."""
        return f"{self.model}.{self.precision.value}.plan"

    @classmethod
    def for_model(cls, model: str, precision: Precision = Precision.FP32,
                  flavour: Flavour | None = None) -> ArtifactName:
        """From the model's file-name stem (``pose`` / ``mnn``)."""
        return cls(kind_of(model), precision, flavour)

    @classmethod
    def parse(cls, name: str | Path) -> ArtifactName | None:
        """``export/pose.int8-trt.onnx``, ``mnn.fp16.plan``, ``pose.int8@tensorrt`` -> the name's parts;
        None for a name outside the grammar (a user's own file name)."""
        parts = Path(str(name).split("@")[0]).name.split(".")
        kinds = {v: k for k, v in MODEL_NAMES.items()}
        if parts[0] not in kinds:
            return None
        kind = kinds[parts[0]]
        tag = parts[1] if len(parts) > 2 else ""
        if len(parts) == 2 and parts[1] not in ("onnx", "plan", "engine"):
            tag = parts[1]  # a bare stem: "pose.fp16"
        for flavour, t in _INT8_TAGS.items():
            if tag == t:
                return cls(kind, Precision.INT8, flavour)
        if tag in ("", Precision.FP32.value):
            return cls(kind)
        if tag == Precision.FP16.value:
            return cls(kind, Precision.FP16)
        return None


def kind_of(model: str) -> ModelKind:
    """``pose`` -> POSE, ``mnn`` -> FULL; a ValueError naming the known names otherwise."""
    for kind, name in MODEL_NAMES.items():
        if name == model:
            return kind
    raise ValueError(f"unknown model name {model!r}; known: {', '.join(MODEL_NAMES.values())}")


def onnx_sibling(path: Path, precision: Precision, flavour: Flavour | None = None) -> Path:
    """The same model's ONNX file for another precision: pose.onnx -> pose.fp16.onnx."""
    model = Path(path).name.split(".", 1)[0]
    tag = ArtifactName(ModelKind.POSE, precision, flavour if precision is Precision.INT8 else None).tag
    return Path(path).with_name(f"{model}.{tag}.onnx" if tag else f"{model}.onnx")


def export_onnx_names() -> tuple[str, ...]:
    """Every ONNX file an export with --fp16 --int8 writes, in the order reports list them."""
    names = []
    for kind in MODEL_NAMES:
        names += [ArtifactName(kind).onnx(), ArtifactName(kind, Precision.FP16).onnx()]
        names += [ArtifactName(kind, Precision.INT8, f).onnx() for f in Flavour]
    return tuple(names)
