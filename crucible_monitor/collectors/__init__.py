"""Collectors: one module per source, each with a declared metric catalogue."""
