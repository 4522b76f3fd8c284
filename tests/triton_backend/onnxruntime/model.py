"""A stand-in for NVIDIA's ONNX Runtime backend, as a Triton Python-based backend.

The Triton in the tests (the ``tritonserver`` that the ``nvidia-pytriton`` wheel bundles) has only
the python backend. Laid out as ``BACKENDS/onnxruntime/model.py``, this file makes every
``platform: "onnxruntime_onnx"`` model of an ``mnn-export --triton-repo`` repository load
unchanged: the server's own config parsing, dynamic batching, scheduling, protocols and
statistics, with ``model.onnx`` run by onnxruntime here. Tensors cross by DLPack: the stub's
``as_numpy`` / ``Tensor(name, array)`` were built against NumPy 1 and carry garbage (or nothing)
under NumPy 2, which the project uses.
"""

import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        folder = os.path.join(args["model_repository"], args["model_version"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = ort.InferenceSession(os.path.join(folder, "model.onnx"), options,
                                            providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.outputs = [o.name for o in self.session.get_outputs()]

    def execute(self, requests):
        responses = []
        for request in requests:
            feed = {n: np.from_dlpack(pb_utils.get_input_tensor_by_name(request, n)) for n in self.inputs}
            out = self.session.run(self.outputs, feed)
            tensors = [pb_utils.Tensor.from_dlpack(n, np.ascontiguousarray(v)) for n, v in zip(self.outputs, out)]
            responses.append(pb_utils.InferenceResponse(tensors))
        return responses
