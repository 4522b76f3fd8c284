"""``mnn-build``: TensorRT engines from exported ONNX files (the library is ``mnn_edge.runtime.tensorrt``)."""
