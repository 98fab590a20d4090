"""canarist.engine."""
