"""Training: the four MNN losses, the dataset view, the loop behind ``mnn-train``."""
