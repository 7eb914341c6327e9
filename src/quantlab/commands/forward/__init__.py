"""The ``forward`` command: evaluate a sweep's selected parameters on a later window, and resume.

DAG: per candidate, the ``run`` chain (load_data -> signals -> simulate -> score, content-
addressed, so an identical window is never recomputed) -> forward_session -> refresh_index.

Candidates come from a prior sweep run directory: for a grid sweep, the top ``forward_top_k``
leaderboard rows by ``forward_metric``; for a walk-forward sweep, the last split's train-selected
candidates in their train rank. The forward window trades only from ``forward_start``; indicator
warm-up reads earlier bars.

Resume replays the session deterministically from ``forward_start`` to the new end with the same
candidates and costs. The recorded ledger and trades must be an exact prefix of the replay (else
the data of the processed window changed: exit 3, nothing is rewritten); only the new bars and
trades are appended. So a resumed session ends with exactly the metrics, trades and ledger of one
forward run over the whole window, and never holds a bar or a trade twice. The replay carries the
open position, cash and cooldown across the old end by construction.

The session directory is ``forward_outdir`` itself (default ``outputs/forward_runs/<session_id>``);
an existing one must be empty or hold the same session (then the request extends it). A session is
resumed by its directory under the id recorded in its ``session_metadata.json`` (renamed and copied
directories work). Requests naming a session directory hold its lock (:func:`session_lock_key`)
from planning to reading back their result, and keep their bookkeeping under a key of their own
(``requests/<request_key>/``), so concurrent resumes run one at a time and never share an answer.

Modules: :mod:`.plan` (request -> ForwardPlan), :mod:`.steps` (what workflow/rules/forward.smk
calls), :mod:`.publish` (the session's report writers). This package imports none of them.
"""
