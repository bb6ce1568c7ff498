"""Line charts for reports: PNG through matplotlib (the `report` extra), else plain SVG.

`line_chart(series, ...)` returns a `Chart` holding PNG bytes (matplotlib installed) or an
SVG document (a small hand-written renderer), so a report never needs anything remote.

Example:
    >>> chart = line_chart({"best": ([0, 10, 20], [0.2, 0.5, 0.7])}, title="reward",
    ...                    xlabel="LM calls", ylabel="reward", force_svg=True)
    >>> chart.kind, chart.data.startswith(b"<svg")
    ('svg', True)
"""

from __future__ import annotations

import html
import io
from dataclasses import dataclass

__all__ = ["Chart", "line_chart"]

Series = dict[str, tuple[list[float], list[float]]]
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd")


@dataclass
class Chart:
    """A rendered chart: `kind` is "png" or "svg"; `data` the file's bytes."""

    kind: str
    data: bytes
    title: str
    file_name: str = ""

    @property
    def suffix(self) -> str:
        return f".{self.kind}"


def line_chart(series: Series, title: str, xlabel: str, ylabel: str,
               force_svg: bool = False) -> Chart:
    """Plot each named series (x values, y values) as a line with markers."""
    if not force_svg:
        try:
            return Chart("png", _matplotlib_png(series, title, xlabel, ylabel), title)
        except ImportError:
            pass
    return Chart("svg", _svg(series, title, xlabel, ylabel).encode(), title)


def _matplotlib_png(series: Series, title: str, xlabel: str, ylabel: str) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.5, 3.6), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for (name, (xs, ys)), color in zip(series.items(), COLORS * 4, strict=False):
        points = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None]
        if points:
            axes.plot([p[0] for p in points], [p[1] for p in points], marker="o",
                      markersize=3.5, linewidth=1.6, label=name, color=color)
    axes.set_title(title, fontsize=11)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    if len(series) > 1:
        axes.legend(fontsize=9, loc="lower right")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _svg(series: Series, title: str, xlabel: str, ylabel: str) -> str:
    width, height, left, right, top, bottom = 720, 340, 60, 20, 36, 48
    points = [(x, y) for xs, ys in series.values() for x, y in zip(xs, ys, strict=True)
              if y is not None]
    x0, x1 = (min(p[0] for p in points), max(p[0] for p in points)) if points else (0, 1)
    y0, y1 = (min(p[1] for p in points), max(p[1] for p in points)) if points else (0, 1)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        y0, y1 = y0 - 0.5, y1 + 0.5

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (width - left - right)

    def sy(y: float) -> float:
        return height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom)

    esc = html.escape
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
             f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="13">'
             f'{esc(title)}</text>',
             f'<rect x="{left}" y="{top}" width="{width - left - right}" '
             f'height="{height - top - bottom}" fill="none" stroke="#999"/>']
    for value, anchor in ((y0, "end"), (y1, "end")):
        parts.append(f'<text x="{left - 6}" y="{sy(value) + 4:.1f}" text-anchor="{anchor}">'
                     f'{value:.3g}</text>')
    for value in (x0, x1):
        parts.append(f'<text x="{sx(value):.1f}" y="{height - bottom + 16}" '
                     f'text-anchor="middle">{value:.4g}</text>')
    parts.append(f'<text x="{width / 2}" y="{height - 8}" text-anchor="middle">'
                 f'{esc(xlabel)}</text>')
    parts.append(f'<text x="14" y="{height / 2}" text-anchor="middle" '
                 f'transform="rotate(-90 14 {height / 2})">{esc(ylabel)}</text>')
    for n, ((name, (xs, ys)), color) in enumerate(zip(series.items(), COLORS * 4,
                                                       strict=False)):
        coords = [f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(xs, ys, strict=True)
                  if y is not None]
        if coords:
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.6" '
                         f'points="{" ".join(coords)}"/>')
            parts += [f'<circle cx="{c.split(",")[0]}" cy="{c.split(",")[1]}" r="2.5" '
                      f'fill="{color}"/>' for c in coords]
        parts.append(f'<text x="{left + 8}" y="{top + 14 + 14 * n}" fill="{color}">'
                     f'{esc(name)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)
