"""Benchmarks: the timing core (:mod:`.timing`), the result schema (:mod:`.schema`), the machine
record (:mod:`.machine`), the end-to-end breakdown (:mod:`.breakdown`), the suite that opens and times
artifacts side by side (:mod:`.suite`, shared by ``mnn-bench``, ``mnn-report`` and bench/ scripts) and
``mnn-bench``'s flags (:mod:`.cli`)."""
