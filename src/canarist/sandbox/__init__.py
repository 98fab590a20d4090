"""canarist.sandbox."""
