"""canarist.operator."""
