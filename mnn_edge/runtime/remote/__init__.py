"""A model on an inference server speaking the KServe V2 protocol (Triton, ``mnn-serve``) as a runner.

- :mod:`.url`: ``grpc://`` / ``http://`` model URLs, parsed in one place; imports no client library,
  so the runtime registry and the command lines can tell a URL from a file for free.
- :mod:`.transport`: gRPC and HTTP through ``tritonclient`` behind one interface (the connection:
  this backend's loader half).
- :mod:`.runner`: :class:`~.runner.RemoteRunner`, the model's metadata and batch limit read from the
  server, then ``infer`` as any local runner.
"""
