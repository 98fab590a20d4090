"""canarist.cli."""
