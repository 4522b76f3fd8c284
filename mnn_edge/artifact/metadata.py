"""What an artifact says about itself: input spec, normalisation, outputs and provenance.

Stored as ONNX ``metadata_props`` (one JSON document under the key ``mnn_edge``), inside
checkpoints, and in the JSON sidecar beside each TensorRT plan. Every runtime reads it from the
artifact; no caller re-types a mean or a crop size.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from enum import Enum

from mnn_edge.errors import MnnEdgeError

METADATA_KEY = "mnn_edge"
MODEL_VERSION = "mnn-1"
# ImageNet statistics on RGB in [0, 1]: the default normalisation, stored in every checkpoint.
DEFAULT_MEAN = (0.485, 0.456, 0.406)
DEFAULT_STD = (0.229, 0.224, 0.225)


# The network's crop side (Table 1 of the supplementary material: stage 9 works at 256 px) and
# the iBUG 68-point scheme of the shipped models: defaults only; an artifact's own values are in
# its metadata, which every consumer reads.
INPUT_SIZE = 256
DEFAULT_NUM_LANDMARKS = 68


class ModelKind(str, Enum):
    POSE = "pose"  # encoder-only: pose
    FULL = "full"  # pose, pose_proj, landmarks, visibility


class Precision(str, Enum):
    FP32 = "fp32"
    FP16 = "fp16"
    INT8 = "int8"


class Flavour(str, Enum):
    """Which Q/DQ convention an INT8 graph follows (stored as ``extra["int8_flavour"]``)."""

    CPU = "cpu"  # ONNX Runtime on x86/ARM CPUs: u8 activations, s8 weights
    TRT = "trt"  # TensorRT explicit quantization: s8 everywhere, zero point 0


OUTPUT_UNITS = {
    "pose": "yaw, pitch, roll [deg, 300W-LP/AFLW2000-3D convention]; tx, ty [crop px]; "
            "tz [weak-perspective scale, crop px per mean-face unit]",
    "pose_proj": "as pose; the head trained through the mean-face alignment loss",
    "landmarks": "x, y [crop px, pixel centres on integers]",
    "visibility": "probability that the landmark is visible (not self-occluded or occluded)",
    "heatmaps": "per-landmark spatial softmax over the crop (debug exports only)",
}


@dataclass(frozen=True)
class ModelMetadata:
    kind: ModelKind
    num_landmarks: int
    input_name: str = "image"
    input_size: int = INPUT_SIZE  # square crop side in pixels
    layout: str = "NCHW"
    channel_order: str = "RGB"
    # pixel -> (pixel / 255 - mean) / std, per channel in channel_order
    mean: tuple[float, float, float] = DEFAULT_MEAN
    std: tuple[float, float, float] = DEFAULT_STD
    landmark_scheme: str = "ibug68"
    outputs: tuple[str, ...] = ("pose",)
    precision: Precision = Precision.FP32
    model_version: str = MODEL_VERSION
    checkpoint_sha256: str = ""  # empty for random weights
    extra: dict = field(default_factory=dict)  # e.g. calibration method, opset

    @property
    def flavour(self) -> Flavour | None:
        """The INT8 flavour; None for FP32/FP16. Quantized files have carried it since INT8 existed;
        one without it was made by ONNX Runtime's CPU conventions, the only flavour then."""
        if self.precision is not Precision.INT8:
            return None
        return Flavour(str(self.extra.get("int8_flavour", Flavour.CPU.value)))

    def output_units(self) -> dict[str, str]:
        return {name: OUTPUT_UNITS[name] for name in self.outputs}

    def to_json(self) -> str:
        d = asdict(self)
        d["kind"] = self.kind.value
        d["precision"] = self.precision.value
        d["output_units"] = self.output_units()
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelMetadata:
        d = json.loads(text)
        d.pop("output_units", None)
        d["kind"] = ModelKind(d["kind"])
        d["precision"] = Precision(d["precision"])
        for key in ("mean", "std", "outputs"):
            d[key] = tuple(d[key])
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})

    def with_(self, **changes) -> ModelMetadata:
        return replace(self, **changes)


# Every landmark costs a 256x256 heatmap per image (256 KB in float32): far beyond the densest
# annotation in use (WFLW's 98), this many would only exhaust memory.
MAX_LANDMARKS = 512


def check_num_landmarks(n: int) -> None:
    """1 <= L <= MAX_LANDMARKS, as one clear error (L comes from flags, configs and checkpoints)."""
    if not 1 <= n <= MAX_LANDMARKS:
        raise MnnEdgeError(f"the number of landmarks L must be between 1 and {MAX_LANDMARKS}, got {n}")
