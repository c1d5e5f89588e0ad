"""GPU serving: cluster files, their checks, Kubernetes manifests, and the gateway.

- `fit` — the GPU memory arithmetic (weights, KV cache, sequences that fit).
- `checks` — every check of a cluster file, as located problems (`lint` runs them too).
- `report` — `serving check`: the per-deployment memory budget and the findings.
- `manifests` — Kubernetes manifests from a cluster file; drift against `serving/k8s/`.
- `gateway` — the OpenAI-compatible gateway serving managed prompts (`promptyard gateway`).
"""
