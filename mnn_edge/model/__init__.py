"""The MNN network, its encoder-only pose model and the in-graph landmark decoder."""

from mnn_edge.model.decode import LandmarkDecoder
from mnn_edge.model.network import INPUT_SIZE, MNN, PoseModel, init_weights

__all__ = ["INPUT_SIZE", "MNN", "LandmarkDecoder", "PoseModel", "init_weights"]
