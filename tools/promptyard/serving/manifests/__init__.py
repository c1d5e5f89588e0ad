"""Kubernetes manifests from a cluster file, written deterministically, checked for drift.

`serving/k8s/<cluster>/` (one folder per cluster file) holds:

- `namespace.yaml`           the Namespace;
- `model-<deployment>.yaml`  per model: a Deployment running vLLM's OpenAI-compatible server
                             with the engine arguments, a Service, a HorizontalPodAutoscaler
                             (autoscaling/v2, on the per-pod custom metric) when `autoscaling`
                             is set, and a PodDisruptionBudget;
- `registry.yaml`            `promptyard serve` pulling the repository: Deployment, Service;
- `gateway.yaml`             the gateway's routing and online quality (a ConfigMap),
                             Deployment, Service;
- `alerts.yaml`              with a gateway: the PrometheusRule (prometheus-operator) with
                             the alerts of `promptyard.rollout.rules`;
- `rollout.yaml`             with `rollout`: the controller (`promptyard rollout run`), one
                             replica, recreated rather than rolled (never two at once);
- `bundle.yaml`              with `--bundle FILE` only: the ConfigMap `promptyard-bundle`
                             holding a bundle (`promptyard bundle`), which the registry and
                             the gateway mount as their fallback when git or the registry
                             cannot be reached.

Why the bundle is opt-in: a bundle holds released state (tags, which the release workflow
creates after a merge) and the commit it was built at, so it cannot be a function of a pull
request's files; committed next to them, every release and every merge would make the
folder drift. Everything else is a pure function of the cluster file and promptyard.yaml:
the same input gives byte-identical files, so `--check` can compare them.

Every document validates against the cluster's Kubernetes version (the test suite checks
them with kubernetes-validate). Files are written atomically; generated files that no longer
belong (a removed deployment or cluster) are removed, files without the generated header are
never touched.
"""

from promptyard.serving.manifests.build import drift, manifests_for, write_manifests

__all__ = ["drift", "manifests_for", "write_manifests"]
