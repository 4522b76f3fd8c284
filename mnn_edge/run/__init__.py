"""mnn-run: face detection, tracking, MNN inference, overlays and JSON output on live or recorded frames."""
