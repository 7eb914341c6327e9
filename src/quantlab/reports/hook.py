"""``params.html_report`` / ``--html-report``: write the result directory's report.html after the
request's artifacts are published and before its response. The page is optional (not in
report.json's artifact list, not a canonical artifact): a page that cannot be made is a warning,
never a failed request."""

from __future__ import annotations


def add_html_report(result: dict) -> None:
    from pathlib import Path

    from quantlab.reports import write_report_html

    path = result.get("artifacts_path")
    if not path or not Path(path).is_dir():
        return
    try:
        result["html_report_path"] = str(write_report_html(path))
    except Exception as exc:  # the result stands; the page is optional
        result.setdefault("warnings", []).append(
            f"report.html not written: {type(exc).__name__}: {exc}")
