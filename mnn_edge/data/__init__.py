"""Face data: the synthetic generator, readers of the real datasets, crops, augmentation."""
