"""TensorRT engine builds: ``mnn-build`` (ONNX -> ``.plan`` + JSON sidecar), recipes, API-surface data.

Nothing here imports tensorrt at import time; ``capabilities.import_tensorrt`` does, when a build
or a load needs it.
"""
