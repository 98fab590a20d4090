"""canarist.kube."""
