"""The TensorRT backend, in one package (the layout of Polygraphy's ``backend/trt``):

- :mod:`.capabilities`: which TensorRT this is and what it can do (feature checks, never versions);
  :mod:`.api_surface` + ``api_names/``: the names each supported release has, checked in CI.
- :mod:`.config`: build recipes -> ``BuildConfig``; :mod:`.compat`: what an ONNX graph needs from
  TensorRT (explicit-quantization rules) before a build is tried.
- :mod:`.build`: ONNX -> ``.plan`` + JSON sidecar (:mod:`mnn_edge.artifact.sidecar`; ``mnn-build``, :mod:`.cli`).
- :mod:`.loader`: the sidecar's checks, a CUDA context, deserialisation (``load_engine``);
  :mod:`.runner`: an execution context on the loaded engine, I/O bound once, execute;
  :mod:`.cuda_memory`: device buffers and streams through pycuda or cuda-python.

Nothing here imports tensorrt at import time; ``capabilities.import_tensorrt`` does, when a build
or a load needs it. The package imports only downward (artifact, runtime.base, fileio, errors).
"""
