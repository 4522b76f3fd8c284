"""PyTorch checkpoint -> ONNX artifacts (FP32 here; FP16/INT8 in the quantization modules)."""
