"""Anomaly detection, explanations and capacity forecasts.

- :mod:`~crucible_monitor.analysis.engine`: :class:`AnomalyEngine`, what the agent runs (refit and score) and the
  facade over the parts below (list, explain, forecast).
- :mod:`~crucible_monitor.analysis.anomalies`: scores become anomalies (start, peak, end, attribution); listing, rates.
- :mod:`~crucible_monitor.analysis.explain`: why an anomaly or a window is unusual.
- :mod:`~crucible_monitor.analysis.capacity`: capacity forecasts and the capacity report.
- :mod:`~crucible_monitor.analysis.registry`: the model registry, process snapshots and scoring progress (state.db).
- :mod:`~crucible_monitor.analysis.recommend`: recommendations from anomalies, forecasts and alerts (a pure function).
- :mod:`~crucible_monitor.analysis.baseline`: the seasonal baseline of one series (median/MAD by hour of week).
- :mod:`~crucible_monitor.analysis.forest`: the host model (IsolationForest, fitted in a child process by
  :mod:`~crucible_monitor.analysis.fitting`, scored with numpy).
- :mod:`~crucible_monitor.analysis.streaming`: the streaming detector for one series (measured on NAB).
- :mod:`~crucible_monitor.analysis.forecast`: Theil–Sen trends with intervals and fit quality.
- :mod:`~crucible_monitor.analysis.features`: the key series the host model watches.
- :mod:`~crucible_monitor.schemas.analysis`: the pydantic models the API and MCP tools return, and the numeric
  scores and forecasts alert rules read (no numpy: interfaces import it cheaply).

Nothing here imports scikit-learn or pandas into the agent: only the fitting child process loads scikit-learn.
This package's ``__init__`` imports nothing, so importing a submodule costs only that submodule.
"""

from __future__ import annotations

__all__: list[str] = []
