"""Settings the fleet tests give their agents: they watch only themselves (what this machine is doing must not rank
them), and one rule that always fires, for an agent that must rank worst."""

from __future__ import annotations

ONLY_ITSELF = (
    "collectors:\n  system:\n    enabled: false\n  services:\n    enabled: false\n"
    "alerts:\n  cpu_threshold: null\n  memory_threshold: null\n  disk_threshold: null\n"
)
"""The agents watch only themselves: what this machine is doing must not rank them."""
ALWAYS_FIRING = """
rules:
  - name: AgentPresent
    kind: threshold
    metric: agent_resident_memory_bytes
    op: ">"
    value: 0
    for: 0s
    severity: critical
    annotations:
      summary: "the agent holds {{ value }} bytes"
"""
"""An alerting file whose one rule fires on every agent (its memory is above 0)."""
