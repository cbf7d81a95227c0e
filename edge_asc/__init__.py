"""edge-asc: on-device acoustic scene classification."""

__version__ = "0.1.0"
