"""Canary rollouts that advance or abort themselves from production metrics.

The strategy is declared in the environment file (`steps`, `analysis`); the controller
(`promptyard rollout run`) reads git and Prometheus, decides advance / abort / hold with an
always-valid sequential test, and writes each traffic change as a commit pushed with
compare-and-swap. It keeps no state of its own.
"""
