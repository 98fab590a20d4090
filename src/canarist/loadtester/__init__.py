"""canarist.loadtester."""
