"""Anomaly detection, explanations and capacity forecasts.

- :mod:`~crucible_monitor.analysis.engine`: :class:`AnomalyEngine`, what the agent runs (refit, score, explain,
  forecast, recommend) and its :class:`AnalysisConfig`.
- :mod:`~crucible_monitor.analysis.baseline`: the seasonal baseline of one series (median/MAD by hour of week).
- :mod:`~crucible_monitor.analysis.forest`: the host model (IsolationForest, fitted in a child process by
  :mod:`~crucible_monitor.analysis.fitting`, scored with numpy).
- :mod:`~crucible_monitor.analysis.streaming`: the streaming detector for one series (measured on NAB).
- :mod:`~crucible_monitor.analysis.forecast`: Theil–Sen trends with intervals and fit quality.
- :mod:`~crucible_monitor.analysis.features`: the key series the host model watches.
- :mod:`~crucible_monitor.analysis.results`: the pydantic models the API and MCP tools return.

Nothing here imports scikit-learn or pandas into the agent: only the fitting child process loads scikit-learn.
This package's ``__init__`` imports nothing, so importing a submodule costs only that submodule.
"""

from __future__ import annotations

__all__: list[str] = []
