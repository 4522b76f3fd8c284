"""INT8 (QDQ, two flavours) and FP16 variants of the exported ONNX models, and their checks."""
