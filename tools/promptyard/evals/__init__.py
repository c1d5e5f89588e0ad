"""Evaluation: assertion types, providers, the runner, the cache and results."""
