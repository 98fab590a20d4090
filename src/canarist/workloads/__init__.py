"""canarist.workloads."""
