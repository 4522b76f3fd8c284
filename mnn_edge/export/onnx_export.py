"""Checkpoint -> ``pose.onnx`` (encoder-only) and ``mnn.onnx`` (full, landmarks decoded in-graph).

Opset 17, written by torch's TorchScript-based exporter (``dynamo=False``), on purpose:
TensorRT 8.6 parses ONNX up to opset 17 and JetPack 6's TensorRT 10.3 parses it too, while
torch 2.13's default ``torch.export`` exporter writes opset 18 (and failed on this model's dynamic
batch). BatchNorm is folded into the convolutions by the exporter's constant folding in eval mode.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import torch

from mnn_edge.artifact import ModelKind, ModelMetadata
from mnn_edge.artifact.onnx_io import set_metadata
from mnn_edge.checkpoint import Checkpoint
from mnn_edge.model.deploy import deploy_module

OPSET = 17


def export_onnx(ckpt: Checkpoint, kind: ModelKind, path: str | Path, keep_heatmaps: bool = False) -> ModelMetadata:
    """Export one model to ``path`` with dynamic batch and embedded metadata.

    Writes ``path`` directly: the caller gives a temporary and renames it once the parity check has
    passed (:func:`mnn_edge.export.exporter.export_fp32`), so there is one temporary per artifact,
    the one the next run recognises and cleans."""
    module = deploy_module(ckpt.model, kind, keep_heatmaps)
    meta = ckpt.metadata(kind, module.output_names, extra={"opset": OPSET})
    size = meta.input_size
    dummy = torch.zeros(1, 3, size, size)
    dynamic = {meta.input_name: {0: "batch"}} | {name: {0: "batch"} for name in module.output_names}
    tmp = Path(path)
    with warnings.catch_warnings():
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
