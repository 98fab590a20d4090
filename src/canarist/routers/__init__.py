"""canarist.routers."""
