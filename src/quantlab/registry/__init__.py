"""Read-only research registry: run directories, paper sessions and the HTML research report.

- :mod:`quantlab.registry.runs` lists, shows, ranks and compares run directories (current and
  legacy layouts) on top of the runs-index row builder in :mod:`quantlab.artifacts.runs_index`.
- :mod:`quantlab.registry.paper` inspects paper-session directories: list, show, health,
  alerts (failed / stale / invalid sessions) and the ``paper_sessions_index.{csv,json}`` files.
- :mod:`quantlab.registry.html_report` writes one self-contained HTML page for a runs root.

Nothing here modifies a run or a session directory. The only files written are the paper
sessions index (in the sessions root) and the HTML report (where the caller asks).
The submodules are imported on demand so ``--runs-list`` stays cheap.
"""

from __future__ import annotations

__all__ = ["runs", "paper", "html_report"]
