"""``mnn-serve``: artifacts behind the KServe V2 protocol on MLServer (:mod:`mnn_edge.serve.cli`).

``artifacts`` needs no MLServer; ``model`` (the MLServer runtime) is imported only by the server.
"""
