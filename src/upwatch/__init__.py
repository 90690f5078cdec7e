"""upwatch: self-hostable uptime monitoring for TCP services."""

__version__ = "0.1.0"
