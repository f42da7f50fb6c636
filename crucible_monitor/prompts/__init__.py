"""MCP prompt templates: Markdown files with $placeholders filled by crucible_monitor.server.mcp."""
