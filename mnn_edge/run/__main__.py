from mnn_edge.run.cli import entry

entry()
