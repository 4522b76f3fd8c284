"""An ONNX file's mnn-edge metadata: one JSON document under ``metadata_props[METADATA_KEY]``.

Torch-free (``mnn-build`` on a Jetson and the runtimes need it without PyTorch).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import onnx

from mnn_edge.artifact.metadata import METADATA_KEY, ModelMetadata
from mnn_edge.errors import MnnEdgeError
from mnn_edge.fileio import atomic_path


def set_metadata(model: onnx.ModelProto, meta: ModelMetadata) -> None:
    """Replace the mnn-edge entry of ``metadata_props`` (other entries are kept)."""
    keep = [p for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    model.metadata_props.add(key=METADATA_KEY, value=meta.to_json())


def get_metadata(model: onnx.ModelProto) -> ModelMetadata | None:
    return metadata_from_props({p.key: p.value for p in model.metadata_props})


def metadata_from_props(props: Mapping[str, str]) -> ModelMetadata | None:
    """From a key -> value map (``metadata_props``, or ONNX Runtime's ``custom_metadata_map``)."""
    text = props.get(METADATA_KEY)
    return None if text is None else ModelMetadata.from_json(text)


def save_onnx(model: onnx.ModelProto, path: str | Path) -> None:
    """Check and write atomically (the models are far below protobuf's 2 GB limit)."""
    onnx.checker.check_model(model)
    with atomic_path(path) as tmp:
        onnx.save(model, str(tmp))


def load_onnx(path: str | Path) -> onnx.ModelProto:
    """Load a graph (no external data) or raise one line saying the file is not ONNX."""
    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf DecodeError and friends
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise MnnEdgeError(f"{path} is not a loadable ONNX model: {first}") from e
