"""canarist.metrics."""
