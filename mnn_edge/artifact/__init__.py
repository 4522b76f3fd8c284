"""What an artifact is, in one torch-free place: its metadata, its file name, its landmark scheme.

- :mod:`.metadata`: :class:`ModelMetadata` (input spec, normalisation, outputs, precision, INT8
  flavour, provenance) as stored in ONNX files, checkpoints and plan sidecars.
- :mod:`.names`: the file-name grammar (``pose.int8-trt.onnx``, ``mnn.fp16.plan``) both ways.
- :mod:`.landmarks`: landmark schemes (count, outer eye corners, mirror order).
- :mod:`.onnx_io`: reading and writing the metadata of an ONNX graph (imports ``onnx``).
"""

from mnn_edge.artifact.landmarks import LandmarkScheme, landmark_scheme_for, scheme_for
from mnn_edge.artifact.metadata import (
    DEFAULT_MEAN,
    DEFAULT_NUM_LANDMARKS,
    DEFAULT_STD,
    INPUT_SIZE,
    MAX_LANDMARKS,
    METADATA_KEY,
    MODEL_VERSION,
    OUTPUT_UNITS,
    Flavour,
    ModelKind,
    ModelMetadata,
    Precision,
    check_num_landmarks,
)
from mnn_edge.artifact.names import MODEL_NAMES, ArtifactName, export_onnx_names, kind_of, onnx_sibling

__all__ = [
    "DEFAULT_MEAN", "DEFAULT_NUM_LANDMARKS", "DEFAULT_STD", "INPUT_SIZE",
    "MAX_LANDMARKS", "METADATA_KEY", "MODEL_NAMES", "MODEL_VERSION", "OUTPUT_UNITS",
    "ArtifactName", "Flavour", "LandmarkScheme", "ModelKind", "ModelMetadata", "Precision", "check_num_landmarks",
    "export_onnx_names", "kind_of", "landmark_scheme_for", "onnx_sibling", "scheme_for",
]
