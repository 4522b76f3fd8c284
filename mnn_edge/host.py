"""Facts about this machine that any layer may need before it allocates (the benchmark's full
machine record, CPU flags and GPUs included, is ``mnn_edge.bench.machine``)."""

from __future__ import annotations


def memory_gb() -> float | None:
    """Total RAM in GiB (one decimal), None where ``/proc/meminfo`` cannot be read."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None
