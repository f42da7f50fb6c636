"""crucible-monitor: a monitoring agent for Linux web servers that you can talk to."""

__version__ = "0.1.0"
