"""Shared runtime for the training loops: config, model loading, World, metrics, checkpoints."""
