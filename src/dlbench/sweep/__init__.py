"""Sweeps: expand a grid into configs, and run each one unless the cache already holds it."""
