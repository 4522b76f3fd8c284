"""Calibration: images -> network inputs -> per-tensor ranges (a readable JSON table).

Calibration runs once per model on the CPU with ONNX Runtime's calibrators, and its result, the
range table, feeds both INT8 flavours (ONNX Runtime's u8/s8 and TensorRT's symmetric s8). The
table is plain JSON (tensor name -> [min, max]) so that a person can read it and a later run can
reuse it with ``mnn-export --int8 --ranges`` instead of calibrating again.

Calibration images go through exactly the inference preprocessing: the standard crop
(:func:`mnn_edge.data.crop.crop_sample`) then :func:`mnn_edge.preprocess.to_input` with the
artifact's own metadata.

Two ONNX Runtime details shape this module:

* its histogram calibrators keep every intermediate tensor of everything fed to one
  ``collect_data`` call in memory (the full model has ~300 MB of activations per face), so we
  feed one batch per call; the histograms merge across calls;
* we never use ``CalibMaxIntermediateOutputs`` (it silently drops calibration data,
  onnxruntime issue 18893).
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np
import onnx
from tqdm import tqdm

from mnn_edge.artifact import INPUT_SIZE, ModelMetadata
from mnn_edge.errors import MnnEdgeError
from mnn_edge.fileio import read_text_file, write_text_atomic

# Fewer images than this give ranges that say more about the images than about the model.
MIN_CALIB_IMAGES = 16
RANGES_FORMAT = "mnn-edge-ranges-1"
# Op types whose tensors are calibrated: exactly the ones qdq.py may quantize.
CALIBRATED_OPS = ("Conv", "ConvTranspose", "Add", "Concat", "MaxPool", "Resize", "Relu")


class CalibMethod(str, Enum):
    ENTROPY = "entropy"  # KL-divergence threshold on a histogram (TensorRT's classic choice)
    PERCENTILE = "percentile"  # 99.999th percentile of |x| on a histogram
    MINMAX = "minmax"  # plain min/max (fast; outliers stretch the range)


# Measured with early starter weights, 32 synthetic calibration faces, pose MAE against FP32 on 16
# of them (CPU flavour / TensorRT flavour): percentile 0.37 / 0.26 deg, minmax 0.30 / 0.32,
# entropy 2.5 / 2.1 (ONNX Runtime's entropy search clips the one-sided ReLU ranges far too tightly).
DEFAULT_METHOD = CalibMethod.PERCENTILE


@dataclass(frozen=True)
class RangeTable:
    """Per-tensor calibration ranges of one model, plus where they came from."""

    model: str  # artifact stem: "pose" or "mnn"
    method: CalibMethod
    num_images: int
    checkpoint_sha256: str
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    source: str = ""  # what the images were (folder + format, "synthetic N", "random N")

    def to_json(self) -> str:
        doc = {
            "format": RANGES_FORMAT,
            "model": self.model,
            "method": self.method.value,
            "num_images": self.num_images,
            "checkpoint_sha256": self.checkpoint_sha256,
            "source": self.source,
            "num_tensors": len(self.ranges),
            "ranges": {k: [float(lo), float(hi)] for k, (lo, hi) in sorted(self.ranges.items())},
        }
        return json.dumps(doc, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str = "range table") -> RangeTable:
        try:
            doc = json.loads(text)
            if doc.get("format") != RANGES_FORMAT:
                raise ValueError(f"format is {doc.get('format')!r}, expected {RANGES_FORMAT!r}")
            ranges = {k: (float(v[0]), float(v[1])) for k, v in doc["ranges"].items()}
            check_ranges(ranges)
            return cls(model=doc["model"], method=CalibMethod(doc["method"]), num_images=int(doc["num_images"]),
                       checkpoint_sha256=doc.get("checkpoint_sha256", ""), ranges=ranges,
                       source=doc.get("source", ""))
        except (ValueError, KeyError, TypeError, IndexError) as e:
            raise MnnEdgeError(f"{where} is not an mnn-edge range table: {e}") from e

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        write_text_atomic(path, self.to_json())
        return path

    @classmethod
    def load(cls, path: str | Path) -> RangeTable:
        path = Path(path)
        return cls.from_json(read_text_file(path, "range table"), where=str(path))

    def to_tensors_data(self):
        """The ONNX Runtime form (``TensorsData``) the quantizer consumes."""
        from onnxruntime.quantization.calibrate import CalibrationMethod, TensorData, TensorsData

        ort_method = {CalibMethod.ENTROPY: CalibrationMethod.Entropy, CalibMethod.PERCENTILE:
                      CalibrationMethod.Percentile, CalibMethod.MINMAX: CalibrationMethod.MinMax}[self.method]
        data = {k: TensorData(lowest=np.array(lo, np.float32), highest=np.array(hi, np.float32))
                for k, (lo, hi) in self.ranges.items()}
        return TensorsData(ort_method, data)


# No activation of a network fed normalised images comes near this; a table that holds one was
# edited or broken, and would quantize every value of that tensor to zero.
MAX_RANGE = 1e6


def check_ranges(ranges: dict[str, tuple[float, float]]) -> None:
    """Finite, ordered, plausible ranges (ValueError naming the first tensor that is not)."""
    for name, (lo, hi) in ranges.items():
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ValueError(f"tensor {name}: range [{lo}, {hi}] is not finite")
        if lo > hi:
            raise ValueError(f"tensor {name}: range [{lo}, {hi}] has its low end above its high end")
        if max(abs(lo), abs(hi)) > MAX_RANGE:
            raise ValueError(f"tensor {name}: range [{lo:g}, {hi:g}] is implausible (beyond +-{MAX_RANGE:g})")


def ranges_path(folder: str | Path, model: str) -> Path:
    """``calibration/<model>.ranges.json``."""
    return Path(folder) / f"{model}.ranges.json"


# --------------------------------------------------------------------------- calibration inputs


def inputs_from_crops(crops: np.ndarray, meta: ModelMetadata) -> np.ndarray:
    from mnn_edge.preprocess import to_input

    return to_input(crops, meta)


def check_count(n: int, what: str) -> None:
    if n == 0:
        raise MnnEdgeError(f"{what}: no readable images to calibrate with")
    if n < MIN_CALIB_IMAGES:
        warnings.warn(f"{what}: only {n} calibration images (fewer than {MIN_CALIB_IMAGES}); the ranges "
                      "will fit these images rather than the data the model will see", stacklevel=2)


def check_inputs_fit(n: int, input_size: int, what: str) -> None:
    """Calibration holds every input at once, (N, 3, S, S) float32 (0.79 MB a face at 256 px):
    refuse, before rendering or loading any, a count the machine's RAM cannot hold (a 122k-image
    folder without --calib-limit needed 96 GB and ended in an out-of-memory kill)."""
    from mnn_edge.host import memory_gb

    need, ram_gib = n * 3 * input_size ** 2 * 4, memory_gb()
    if ram_gib is not None and need > ram_gib * 1024**3:
        raise MnnEdgeError(f"{what}: {n} calibration images need {need / 1e9:.0f} GB as network inputs but this "
                           f"machine has {ram_gib * 1.073741824:.0f} GB; calibrate on fewer (--calib-limit N or "
                           "--calib-synthetic N: 64-256 is a good range)")


def inputs_from_samples(samples: Sequence, meta: ModelMetadata, progress: bool = True) -> np.ndarray:
    """FaceSamples -> (N, 3, S, S) float32, through the standard crop and the artifact's normalisation."""
    from mnn_edge.data.crop import crop_sample
    from mnn_edge.data.readers import load_image_rgb

    check_inputs_fit(len(samples), meta.input_size, "calibration")
    crops = []
    for s in tqdm(samples, desc="calibration crops", unit="img", disable=not progress):
        try:
            image = load_image_rgb(s.image_path)
        except MnnEdgeError as e:
            warnings.warn(f"skipped calibration image: {e}", stacklevel=2)
            continue
        crops.append(crop_sample(s, image, size=meta.input_size).image)
    if not crops:
        return np.zeros((0, 3, meta.input_size, meta.input_size), np.float32)
    return inputs_from_crops(np.stack(crops), meta)


def inputs_from_dataset(root: str | Path, fmt: str, meta: ModelMetadata, limit: int | None = None,
                        progress: bool = True, subset: str | None = None) -> np.ndarray:
    """A dataset folder (any format of :data:`mnn_edge.data.sample.FORMATS`) -> network inputs."""
    from mnn_edge.data.readers import read_dataset

    root = Path(root)
    if not root.is_dir():
        raise MnnEdgeError(f"calibration folder not found: {root}")
    samples = read_dataset(root, fmt, limit=limit, subset=subset)  # raises when nothing usable is there
    x = inputs_from_samples(samples, meta, progress)
    check_count(len(x), str(root))
    return x


def inputs_from_synthetic(n: int, meta: ModelMetadata, seed: int = 1234, folder: str | Path | None = None,
                          progress: bool = True) -> np.ndarray:
    """Render ``n`` synthetic faces (into ``folder``, or a temporary one) and return their inputs."""
    from mnn_edge.data.synth import write_synthetic

    if n <= 0:
        raise MnnEdgeError("--calib-synthetic needs a positive number of faces")
    with tempfile.TemporaryDirectory(prefix="mnn-calib-") as tmp:
        out = Path(folder) if folder is not None else Path(tmp)
        write_synthetic(out, n, seed=seed, image_size=meta.input_size, progress=progress)
        return inputs_from_dataset(out, "synthetic", meta, limit=n, progress=progress)


def random_inputs(n: int, size: int = INPUT_SIZE, seed: int = 0) -> np.ndarray:
    """Normalised-looking noise: for smoke tests only (ranges from noise are meaningless)."""
    from mnn_edge.runtime.inputs import random_input

    return random_input(n, size, seed)


# --------------------------------------------------------------------------- calibrators


class _OneBatch:
    """An ONNX Runtime CalibrationDataReader that yields a single batch, then stops."""

    def __init__(self, input_name: str, batch: np.ndarray):
        self._items = iter([{input_name: batch}])

    def get_next(self) -> dict | None:
        return next(self._items, None)


def _batches(x: np.ndarray, batch: int) -> Iterator[np.ndarray]:
    for i in range(0, len(x), batch):
        yield x[i:i + batch]


def calibrate(model_path: str | Path, inputs: np.ndarray, method: CalibMethod, model: str = "",
              checkpoint_sha256: str = "", source: str = "", batch: int = 1, progress: bool = True) -> RangeTable:
    """Run ONNX Runtime's calibrator for ``method`` over ``inputs``; return the range table.

    ``model_path`` should be the pre-processed FP32 model (:func:`mnn_edge.quantize.qdq.prepare_fp32`)
    so that the tensor names match the graph that gets quantized.
    """
    from onnxruntime.quantization.calibrate import CalibrationMethod, create_calibrator

    if len(inputs) == 0:
        raise MnnEdgeError("no calibration inputs")
    model_path = Path(model_path)
    input_name = onnx.load(str(model_path), load_external_data=False).graph.input[0].name
    ort_method = {CalibMethod.ENTROPY: CalibrationMethod.Entropy, CalibMethod.PERCENTILE: CalibrationMethod.Percentile,
                  CalibMethod.MINMAX: CalibrationMethod.MinMax}[method]
    # Percentile: ONNX Runtime's default is a symmetric |x| histogram; keep it (TensorRT is symmetric
    # anyway, and for the u8 flavour a symmetric range only costs one bit on ReLU outputs).
    with tempfile.TemporaryDirectory(prefix="mnn-calib-") as tmp:
        calibrator = create_calibrator(model_path, list(CALIBRATED_OPS),
                                       augmented_model_path=str(Path(tmp) / "augmented.onnx"),
                                       calibrate_method=ort_method, extra_options={})
        n_batches = (len(inputs) + batch - 1) // batch
        # ONNX Runtime's histogram collector prints lines per call; keep the progress bar readable.
        with contextlib.redirect_stdout(io.StringIO()):
            for b in tqdm(_batches(inputs, batch), total=n_batches, desc=f"calibrating {model or model_path.name}",
                          unit="batch", disable=not progress):
                calibrator.collect_data(_OneBatch(input_name, np.ascontiguousarray(b)))
            data = calibrator.compute_data()
        del calibrator
    ranges = {}
    for name, td in data.items():
        lo, hi = td.range_value
        ranges[name] = (float(np.min(lo)), float(np.max(hi)))
    return RangeTable(model=model, method=method, num_images=len(inputs), checkpoint_sha256=checkpoint_sha256,
                      ranges=ranges, source=source)

