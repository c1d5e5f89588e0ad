"""Versions and releases: semver rules, tags, bundles, environments."""
