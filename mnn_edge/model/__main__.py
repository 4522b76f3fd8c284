"""``python -m mnn_edge.model [--landmarks L]``: print the per-stage parameter tables."""

from mnn_edge.model.cli import entry

raise SystemExit(entry())
