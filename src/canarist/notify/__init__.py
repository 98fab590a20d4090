"""canarist.notify."""
