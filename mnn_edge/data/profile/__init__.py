"""Face profiling: real near-frontal faces re-rendered at large head poses (300W-LP's method)."""
