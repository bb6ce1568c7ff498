"""Reports on runs: `build_report(run, storage, out)` writes one self-contained HTML file.

Also `synaray report RUN [--storage URI] [--out report.html]`. Matplotlib (the `report`
extra) draws PNG charts; without it the charts are inline SVG.

Example:
    >>> from synaray.reports import build_report
    >>> build_report("my-run", storage="synaray_runs", out="report.html")  # doctest: +SKIP
    PosixPath('report.html')
"""

from synaray.reports.html_report import build_report, render_report
from synaray.reports.run_data import LineageStep, RunData, mutation_kind

__all__ = ["LineageStep", "RunData", "build_report", "mutation_kind", "render_report"]
