"""canarist.api."""
