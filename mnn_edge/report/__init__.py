"""``mnn-report``: benchmark and accuracy results joined into REPORT.md and a trade-off plot."""
