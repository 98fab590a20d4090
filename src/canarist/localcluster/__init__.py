"""canarist.localcluster."""
