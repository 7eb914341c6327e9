"""The ``portfolio`` command: aggregate forward sessions into a buy-and-hold portfolio.

Pure functions over files (no pandas, no Snakemake); the workflow rules call the ``step_*``
functions of :mod:`.steps`:

    portfolio_mode (one job per mode)  -> <mode>.json       (scan + select + combine)
    publish_portfolio                  -> published.json    (writes <out_dir>/<run_id>/ atomically)

Pipeline of one mode:

1. :func:`scan_sessions` — every non-hidden sub-directory of the root with a readable
   ``session_metadata.json`` (a forward session, status success) and a non-empty, well-formed
   ``equity.parquet`` is eligible; anything else is counted and listed as excluded, never a
   crash. Identical sessions (same source run, ticker, interval, strategy and params, window,
   bars, initial cash and final equity) are collapsed to the most recently updated one.
2. :func:`select_sessions` — the filters, in this order: include_tickers, exclude_tickers,
   include_strategies, exclude_strategies, min_return, max_drawdown, latest_per_source_run,
   then rank by ``rank_metric`` (best first) and keep ``top_n``.
3. :func:`combine` — weights (equal_weight, custom_weight, inverse_vol, raw_capital) and the
   portfolio on the union calendar of the selected sessions. See docs/portfolio.md.

Normalisation: a session's normalised equity is ``equity / initial_cash``, i.e. 1.0 at the start
of its first bar (so its normalised total return is exactly its own ``total_return``). Before
its first bar a session is cash at 1.0; between its own bars and after its last bar its value is
forward-filled (flat). The portfolio holds its initial weights without rebalancing:
``V_t = C * sum_i w_i * n_i(t)`` where ``C`` is the sum of the selected sessions' initial cash.

Modules: :mod:`.plan` (request -> PortfolioPlan), :mod:`.sessions` (1), :mod:`.selection` (2),
:mod:`.combine` (3), :mod:`.steps`, :mod:`.publish` (the run directory's artifact writers). This
package imports none of them.
"""
