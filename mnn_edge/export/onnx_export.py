"""Checkpoint -> ``pose.onnx`` (encoder-only) and ``mnn.onnx`` (full, landmarks decoded in-graph).

Opset 17, written by torch's TorchScript-based exporter (``dynamo=False``), on purpose:
TensorRT 8.6 parses ONNX up to opset 17 and JetPack 6's TensorRT 10.3 parses it too, while
torch 2.13's default ``torch.export`` exporter writes opset 18 (and failed on this model's dynamic
batch). BatchNorm is folded into the convolutions by the exporter's constant folding in eval mode.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import torch

from mnn_edge.checkpoint import Checkpoint
from mnn_edge.fileio import atomic_path
from mnn_edge.metadata import METADATA_KEY, ModelKind, ModelMetadata, Precision
from mnn_edge.model.deploy import deploy_module

OPSET = 17
ARTIFACT_NAMES = {ModelKind.POSE: "pose", ModelKind.FULL: "mnn"}


def metadata_for(ckpt: Checkpoint, kind: ModelKind, outputs: tuple[str, ...]) -> ModelMetadata:
    return ModelMetadata(kind=kind, num_landmarks=ckpt.model.num_landmarks, mean=tuple(ckpt.mean),
                         std=tuple(ckpt.std), landmark_scheme=ckpt.landmark_scheme, outputs=tuple(outputs),
                         precision=Precision.FP32, checkpoint_sha256=ckpt.sha256, extra={"opset": OPSET})


def set_metadata(model: onnx.ModelProto, meta: ModelMetadata) -> None:
    """Replace the mnn-edge entry of ``metadata_props`` (other entries are kept)."""
    keep = [p for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    model.metadata_props.add(key=METADATA_KEY, value=meta.to_json())


def get_metadata(model: onnx.ModelProto) -> ModelMetadata | None:
    for p in model.metadata_props:
        if p.key == METADATA_KEY:
            return ModelMetadata.from_json(p.value)
    return None


def save_onnx(model: onnx.ModelProto, path: str | Path) -> None:
    """Check and write atomically (the models are far below protobuf's 2 GB limit)."""
    onnx.checker.check_model(model)
    with atomic_path(path) as tmp:
        onnx.save(model, str(tmp))


def export_onnx(ckpt: Checkpoint, kind: ModelKind, path: str | Path, keep_heatmaps: bool = False) -> ModelMetadata:
    """Export one model to ``path`` with dynamic batch and embedded metadata."""
    module = deploy_module(ckpt.model, kind, keep_heatmaps)
    meta = metadata_for(ckpt, kind, module.output_names)
    size = meta.input_size
    dummy = torch.zeros(1, 3, size, size)
    dynamic = {meta.input_name: {0: "batch"}} | {name: {0: "batch"} for name in module.output_names}
    with atomic_path(path) as tmp, warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of torch.export; see the module docstring.
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (dummy,), str(tmp), opset_version=OPSET, dynamo=False,
                          input_names=[meta.input_name], output_names=list(module.output_names),
                          dynamic_axes=dynamic, do_constant_folding=True)
        model = onnx.load(str(tmp))
        model.producer_name = "mnn-edge"
        model.doc_string = f"MNN {kind.value} model (Valle et al., TPAMI 2020), exported by mnn-edge"
        set_metadata(model, meta)
        onnx.checker.check_model(model)
        onnx.save(model, str(tmp))
    return meta


def random_input(batch: int, size: int = 256, seed: int = 0) -> np.ndarray:
    """Normalised-looking random input for parity checks."""
    return np.random.default_rng(seed).standard_normal((batch, 3, size, size)).astype(np.float32)
