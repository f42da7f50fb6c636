"""MCP prompts: Markdown templates with $placeholders, filled by the builders in :mod:`.builders`."""
