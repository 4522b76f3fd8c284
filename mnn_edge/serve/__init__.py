"""``mnn-serve``: artifacts behind the KServe V2 protocol on MLServer: flags in :mod:`.cli`, the
server in :mod:`.server`, ports in :mod:`.ports`.

``artifacts`` needs no MLServer; ``model`` (the MLServer runtime) is imported only by the server.
"""
