"""Evaluation: any dataset reader x any artifact -> MAE, NME, visibility accuracy (``mnn-eval``)."""
