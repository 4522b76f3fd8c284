"""Contract test double of the TensorRT + pycuda / cuda-python subset mnn-edge uses.

It is NOT evidence that TensorRT works: it checks that our code calls the documented API in the
documented order with consistent names, shapes, dtypes, profiles, flags, contexts and buffer sizes,
and it computes results with ONNX Runtime on the CPU. Real engines are verified only by the
`gpu`-marked tests and `bench/gpu_check` on a machine with an NVIDIA GPU and TensorRT.
"""
