"""restytriage: static triage of suspicious attachments, without executing them."""

__version__ = "0.1.0"
