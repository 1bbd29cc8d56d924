"""Datasets, the FreiHAND layout, synthetic hands and augmenters (heavy imports stay inside modules)."""
