"""canarist.hooks."""
