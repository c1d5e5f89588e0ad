"""Fixtures other suites can reuse (importable as `support.<module>`)."""
