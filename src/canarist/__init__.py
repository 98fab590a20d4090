"""canarist: progressive delivery for Kubernetes, a drop-in for Flagger."""

__version__ = "0.1.0"
REVISION = "dev"
