"""`build_report`: one self-contained HTML file about a run, plus its charts next to it.

The page holds inline CSS and its charts as inline base64 PNG (matplotlib) or inline SVG
(without matplotlib); it loads no script, font or image from anywhere. Sections (each a
`<section id=...>`): `summary`, `rewards` (best and population reward per generation against
LM calls spent), `validation`, `lineage` (seed -> best, each step with its kind: exploit
copy, demo resample or swap, reflection rewrite, crossover...), `best-program`
(instructions and examples), `cost` (LM calls, tokens, cost, failures) and `failures`
(validation examples where the best program still scores under 1: input, expected,
predicted, reward, error).
"""

from __future__ import annotations

import base64
import html
import json
import time
from pathlib import Path
from typing import Any

from synaray.reports.plots import Chart, line_chart
from synaray.reports.run_data import RunData
from synaray.utils.progress import format_duration

__all__ = ["build_report", "render_report"]

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em auto;
max-width:1100px;padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.5em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
th,td{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
pre,code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.88em}
pre{background:#f7f7f7;padding:.6em;white-space:pre-wrap;word-break:break-word}
td pre{margin:0;padding:.2em;background:none}
ol.lineage li{margin:.3em 0}.kind{font-weight:600;color:#1f5f9f}
.muted{color:#777}img{max-width:100%}footer{margin-top:3em;color:#777;font-size:.85em}
"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _json(value: Any) -> str:
    if value is None:
        return '<span class="muted">not saved</span>'
    return f"<pre>{_esc(json.dumps(value, ensure_ascii=False, indent=1))}</pre>"


def _table(headers: list[str], rows: list[list[str]], table_id: str = "") -> str:
    ident = f' id="{table_id}"' if table_id else ""
    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(row) + "</tr>" for row in rows)
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _td(text: str, num: bool = False, raw: bool = False) -> str:
    return f'<td class="num">{_esc(text)}</td>' if num else \
        f"<td>{text if raw else _esc(text)}</td>"


def _image(chart: Chart, element_id: str) -> str:
    name = _esc(chart.file_name)
    if chart.kind == "png":
        encoded = base64.b64encode(chart.data).decode()
        return (f'<img id="{element_id}" alt="{_esc(chart.title)}" data-file="{name}"'
                f' src="data:image/png;base64,{encoded}">')
    return f'<div id="{element_id}" data-file="{name}">{chart.data.decode()}</div>'


# --- sections ------------------------------------------------------------------------------
def _summary(run: RunData) -> str:
    status, spent = run.status, run.spent
    best_val = status.get("best_val_reward")
    rows = [
        ("Run", run.name), ("Location", run.location),
        ("State", run.state_text),
        ("Stop reason", status.get("stop_reason") or "-"),
        ("Generations", f"{status.get('generation', len(run.history))}"
                        + (f" / {status['total_generations']}"
                           if status.get("total_generations") else "")),
        ("Epochs", f"{run.state.get('epoch')} / {run.state.get('epochs')}"),
        ("Best validation reward", _num(best_val)),
        ("Best candidate", run.best_id),
        ("Candidates made", str(len(run.candidates))),
        ("Validated on", run.val_split),
        ("LM calls", str(spent.get("lm_calls", 0))),
        ("Time", format_duration(spent.get("time_s", 0.0))),
    ]
    body = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in rows)
    return f'<section id="summary"><h2>Summary</h2><table class="kv">{body}</table></section>'


def _rewards(run: RunData, charts: dict[str, Chart]) -> str:
    history = run.history
    rows = [[_td(str(h.get("generation"))), _td(str(h.get("epoch", 0) + 1)),
             _td(str(h.get("lm_calls")), num=True), _td(_num(h.get("reward")), num=True),
             _td(_num(h.get("population_reward")), num=True),
             _td(_num(h.get("val_reward")), num=True)] for h in history]
    table = _table(["generation", "epoch", "LM calls", "best reward", "population reward",
                    "validation reward (epoch end)"], rows, "generation-table")
    image = (_image(charts["rewards"], "reward-curve") if history
             else '<p class="muted">No finished generation yet.</p>')
    return (f'<section id="rewards"><h2>Reward per generation</h2>{image}'
            f"<p>Best member and population mean on each generation's minibatch (paired "
            f"comparison), against the LM calls spent so far. {len(history)} generations."
            f"</p><details><summary>Per-generation values</summary>{table}</details>"
            "</section>")


def _validation(run: RunData, charts: dict[str, Chart]) -> str:
    if "validation" not in charts:
        return ('<section id="validation"><h2>Validation</h2><p class="muted">No epoch '
                "has ended yet: no validation reward.</p></section>")
    image = _image(charts["validation"], "validation-curve")
    return (f'<section id="validation"><h2>Validation</h2>{image}<p>Validation reward of '
            f"the best candidate at the end of each epoch (split: {_esc(run.val_split)})."
            "</p></section>")


def _lineage(run: RunData) -> str:
    chain = run.lineage()
    items = []
    for step in chain:
        other = f" with {_esc(step.parents[1])}" if len(step.parents) > 1 else ""
        replaced = f" (took the slot of {_esc(step.replaced)})" if step.replaced else ""
        items.append(
            f'<li data-candidate="{_esc(step.id)}"><code>{_esc(step.id)}</code> '
            f'<span class="kind">{_esc(step.kind)}</span>{other}{replaced}, generation '
            f"{step.generation}: train {_num(step.train_reward)}, validation "
            f"{_num(step.val_reward)}<br><span class=\"muted\">{_esc(step.operation)}"
            "</span></li>")
    counts = ", ".join(f"{kind}: {n}" for kind, n in sorted(run.kind_counts().items()))
    return (f'<section id="lineage"><h2>Lineage of the best candidate</h2>'
            f'<ol class="lineage">{"".join(items)}</ol>'
            f"<p>Parent to child, seed first; each step names how the child was made. "
            f"Candidates made over the run by kind: {_esc(counts)}.</p></section>")


def _best_program(run: RunData) -> str:
    parts = []
    for module, module_state in sorted(run.best_state().items()):
        module_state = module_state or {}
        instructions = module_state.get("instructions")
        examples = module_state.get("examples") or []
        rows = [[_td(str(n)), _td(_json(e.get("inputs")), raw=True),
                 _td(_json(e.get("outputs")), raw=True)] for n, e in enumerate(examples)]
        parts.append(
            f"<h3>{_esc(module)}</h3><h4>Instructions</h4>"
            + (f"<pre>{_esc(instructions)}</pre>" if instructions
               else '<p class="muted">(none: the default prompt)</p>')
            + f"<h4>Examples ({len(examples)})</h4>"
            + (_table(["#", "inputs", "outputs"], rows) if rows else
               '<p class="muted">(none)</p>'))
    return (f'<section id="best-program"><h2>Best program</h2>{"".join(parts)}</section>')


def _cost(run: RunData) -> str:
    spent, failures = run.spent, run.error_counts()
    best_rows = run.rows(run.best_id, run.val_split)
    rows = [("LM calls", spent.get("lm_calls", 0)), ("LM failures", spent.get("lm_failures", 0)),
            ("Tokens", spent.get("tokens", 0)), ("Cost (USD)", f"{spent.get('cost', 0.0):.4f}"),
            ("Evaluations scored", len(run.state.get("table") or [])),
            ("Evaluations with an error", sum(failures.values())),
            ("Best program: errors on " + run.val_split,
             sum(1 for r in best_rows if r["error"]))]
    rows += [(f"errors: {kind}", n) for kind, n in sorted(failures.items())]
    body = "".join(f"<tr><th>{_esc(k)}</th><td class=\"num\">{_esc(v)}</td></tr>"
                   for k, v in rows)
    return f'<section id="cost"><h2>Cost and failures</h2><table>{body}</table></section>'


def _failures(run: RunData, below: float, limit: int) -> str:
    failures = run.failures(below)
    shown = failures[:limit]
    rows = [[_td(r["example_id"]), _td(_json(r["input"]), raw=True),
             _td(_json(r["expected"]), raw=True), _td(_json(r["y_pred"]), raw=True)
             if r["y_pred"] is not None else _td('<span class="muted">no output</span>',
                                                 raw=True),
             _td(_num(r["reward"]), num=True), _td(r["error"] or "")] for r in shown]
    split = failures[0]["split"] if failures else run.val_split
    total = len(run.rows(run.best_id, split))
    note = (f"{len(failures)} of {total} {split} examples score under {below:g}"
            + (f" (the worst {limit} shown)" if len(failures) > limit else "") + ".")
    table = _table(["example", "input", "expected", "predicted", "reward", "error"], rows,
                   "failure-table")
    return (f'<section id="failures"><h2>Where the best program still fails</h2>'
            f"<p>{_esc(note)}</p>{table}</section>")


def _changed(run: RunData, limit: int) -> str:
    """Rows that the search changed, per split: improved and regressed, before and after."""
    parts = []
    for split, name in (("test", "test"), ("val", "validation")):
        rows = run.predictions.get(split)
        if not rows:
            continue
        changed = run.changed_rows(split)
        counts = {k: len(v) for k, v in changed.items()}
        parts.append(f"<h3>{name}: {counts['improved']} improved, {counts['regressed']} "
                     f"regressed, {len(rows) - sum(counts.values())} unchanged</h3>")
        shown = [(kind, r) for kind in ("regressed", "improved") for r in changed[kind][:limit]]
        if shown:
            cells = [[_td(kind), _td(r["id"]), _td(_json(_loads(r["input"])), raw=True),
                      _td(_json(_loads(r["expected"])), raw=True),
                      _td(_json(_loads(r["predicted_before"])), raw=True),
                      _td(_json(_loads(r["predicted_after"])), raw=True),
                      _td(f"{_num(r['reward_before'])} → {_num(r['reward_after'])}", num=True)]
                     for kind, r in shown]
            parts.append(_table(["change", "example", "input", "expected", "before", "after",
                                 "reward"], cells, f"changed-{split}"))
    if not parts:
        return ""
    return ('<section id="changed"><h2>Rows the search changed (initial → best program)'
            "</h2>" + "".join(parts) + "</section>")


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


# --- assembly ------------------------------------------------------------------------------
def _charts(run: RunData, force_svg: bool) -> dict[str, Chart]:
    history = run.history
    charts = {}
    if history:
        calls = [h.get("lm_calls", 0) for h in history]
        charts["rewards"] = line_chart(
            {"best member": (calls, [h.get("reward") for h in history]),
             "population mean": (calls, [h.get("population_reward") for h in history])},
            title="Reward per generation", xlabel="LM calls spent", ylabel="reward",
            force_svg=force_svg)
    ends = [h for h in history if h.get("val_reward") is not None]
    if ends:
        charts["validation"] = line_chart(
            {"validation reward": ([h.get("lm_calls", 0) for h in ends],
                                   [h["val_reward"] for h in ends])},
            title="Validation reward (epoch ends)", xlabel="LM calls spent",
            ylabel="reward", force_svg=force_svg)
    return charts


def render_report(run: RunData, charts: dict[str, Chart], fail_below: float = 1.0,
                  max_failures: int = 50) -> str:
    """The HTML text of the report (charts already rendered)."""
    from synaray.version import __version__

    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    body = "".join([_summary(run), _rewards(run, charts), _validation(run, charts),
                    _lineage(run), _best_program(run), _cost(run),
                    _changed(run, max_failures), _failures(run, fail_below, max_failures)])
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>synaray report: {_esc(run.name)}</title><style>{CSS}</style></head>"
            f"<body><h1>synaray report: <code>{_esc(run.name)}</code></h1>{body}"
            f"<footer>Generated {stamp} by synaray {__version__} from {_esc(run.location)}"
            "</footer></body></html>")


def build_report(run: str, storage: str | None = None, out: str | Path | None = None,
                 fail_below: float = 1.0, max_failures: int = 50,
                 force_svg: bool = False) -> Path:
    """Write the HTML report of a run and its chart files; return the HTML path.

    Args:
        run: the run name under `storage`, or the path of a run folder.
        storage: run storage (local folder or `s3://...`); see `synaray status`.
        out: the HTML file (default `report-<run>.html` in the working directory); charts
            go next to it as `<stem>-rewards.png` and `<stem>-validation.png` (`.svg`
            without matplotlib).
        fail_below: examples of the best program scoring under this are listed as failures.
        max_failures: at most this many failures are listed (worst first).
        force_svg: draw SVG even when matplotlib is installed.

    Raises:
        CheckpointError: no such run, or it has no optimizer state yet.

    Example:
        >>> build_report("demo", storage="runs/", out="demo.html")  # doctest: +SKIP
        PosixPath('demo.html')
    """
    from synaray.observability.run_files import open_run

    data = RunData.load(open_run(run, storage))
    out = Path(out) if out is not None else Path(f"report-{data.name}.html")
    charts = _charts(data, force_svg)
    out.parent.mkdir(parents=True, exist_ok=True)
    for name, chart in charts.items():
        path = out.with_name(f"{out.stem}-{name}{chart.suffix}")
        path.write_bytes(chart.data)
        chart.file_name = path.name
    out.write_text(render_report(data, charts, fail_below, max_failures), encoding="utf-8")
    return out
