"""Writing a comparison: report.json, report.md and three PNG plots (drawn by ``plots`` with Pillow)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from datetime import datetime
from io import BytesIO
from typing import Any

from .engine import PROBLEMS, Analysis

PLOTS = {"differences": "differences.png", "scatter": "scatter.png", "hourly_agreement": "hourly_agreement.png"}


def write_all(analysis: Analysis, out: str, source: str, *, drawn: Mapping[str, Future[bytes]] | None = None) -> dict[str, str]:
    """Write every output into ``out`` (created if missing); returns {kind: path}. ``drawn``: charts already being
    drawn (``draw_charts``), by kind; the others are drawn here."""
    os.makedirs(out, exist_ok=True)
    report = {"source": source, **analysis.report}
    written = {"json": os.path.join(out, "report.json"), "markdown": os.path.join(out, "report.md")}
    with open(written["json"], "w") as handle:
        json.dump(report, handle, indent=2)
        handle.write("\n")
    written.update(write_plots(analysis, out, drawn=drawn))
    for kind, name in PLOTS.items():  # a plot this report has nothing for must not show an earlier report's data
        stale = os.path.join(out, name)
        if kind not in written and os.path.exists(stale):
            os.remove(stale)
    with open(written["markdown"], "w") as handle:
        handle.write(markdown(report, {k: os.path.basename(v) for k, v in written.items() if k in PLOTS}))
    return written


def draw_charts(pool: Executor, endpoint: str, production: str, shadow: str, *,
                histogram: Sequence[tuple[float, float, int]] = (), scatter: Sequence[tuple[float, float]] = (),
                agreement: Sequence[tuple[str, float]] = ()) -> dict[str, Future[bytes]]:
    """Start drawing, on ``pool``, the charts there is data for (the histogram of differences, the production-vs-shadow
    scatter, the ``agreement`` per hour: (hour, share) of the hours with labels) as PNG bytes; returns {kind: future}.

    Charts are drawn side by side: Pillow lets go of the GIL while it fills, pastes, converts, scales and compresses
    images, most of a chart's time (three charts: about 0.08 s instead of 0.12 s on two cores).
    """
    from . import plots

    def png(chart: Callable[..., BytesIO], *args: Any, **options: Any) -> Callable[[], bytes]:
        return lambda: chart(BytesIO(), *args, **options).getvalue()

    charts: dict[str, Callable[[], bytes]] = {}
    if histogram:
        charts["differences"] = png(plots.histogram, histogram, title=f"{endpoint}: differences of paired predictions",
                                    xlabel=f"difference of paired predictions: {shadow} − {production}")
    if scatter:
        charts["scatter"] = png(plots.scatter, scatter, title=f"{endpoint}: paired predictions",
                                xlabel=f"production: {production}", ylabel=f"shadow: {shadow}")
    if agreement:
        charts["hourly_agreement"] = png(plots.hourly, [datetime.fromisoformat(hour) for hour, _ in agreement],
                                         [100 * share for _, share in agreement], title=f"{endpoint}: agreement per hour")
    return {kind: pool.submit(draw) for kind, draw in charts.items()}


def hourly_agreement(report: dict[str, Any]) -> list[tuple[str, float]]:
    """(hour, label agreement) of the report's hours with labels, in order."""
    return [(hour["hour"], hour["labels"]["agreement"]) for hour in report["hourly"] if hour["labels"]]


def write_plots(analysis: Analysis, out: str, *, drawn: Mapping[str, Future[bytes]] | None = None) -> dict[str, str]:
    """The histogram of differences, the production-vs-shadow scatter and the hourly agreement, as PNGs in ``out``;
    returns {kind: path}. ``drawn``: charts already being drawn, by kind (``draw_charts``).

    A plot with nothing to draw (no numeric predictions, no labels) is not written.
    """
    report, drawn = analysis.report, dict(drawn or {})
    with ThreadPoolExecutor(max_workers=len(PLOTS)) as pool:
        drawn.update(draw_charts(pool, report["endpoint"], report["production_variant"], report["shadow_variant"],
                                 histogram=[] if "differences" in drawn else analysis.histogram,
                                 scatter=[] if "scatter" in drawn else analysis.scatter,
                                 agreement=[] if "hourly_agreement" in drawn else hourly_agreement(report)))
        written = {}
        for kind, name in PLOTS.items():
            if kind in drawn:
                written[kind] = os.path.join(out, name)
                with open(written[kind], "wb") as handle:
                    handle.write(drawn[kind].result())
    return written


def _number(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}g}"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}%"


def markdown(report: dict[str, Any], plots: dict[str, str]) -> str:
    """The report as Markdown: counts, pairing, measures, confusion matrix, hourly table, problem samples."""
    production, shadow = report["production_variant"], report["shadow_variant"]
    settings = report["settings"]
    window = f"{settings['start'] or 'first record'} – {settings['end'] or 'last record'}"
    lines = [f"# Shadow test report: {report['endpoint']}", "",
             f"Production variant `{production}`, shadow variant `{shadow}`; source `{report.get('source', '')}`; "
             f"window {window}; tolerance {settings['tolerance']:g}; label threshold {settings['threshold']:g}.", "",
             "## Records", "", f"| | {production} | {shadow} |", "|---|---:|---:|"]
    variants = report["variants"]
    for key in ("files", "records", "usable", *PROBLEMS, "outside_window"):
        lines.append(f"| {key.replace('_', ' ')} | {variants[production][key]:,} | {variants[shadow][key]:,} |")
    pairing = report["pairing"]
    lines += ["", "## Pairing by inferenceId", "",
              f"- paired: {pairing['paired']:,} ({pairing['numeric_pairs']:,} numeric, {pairing['label_pairs']:,} label)",
              f"- unmatched: {pairing['unmatched_production']:,} production, {pairing['unmatched_shadow']:,} shadow",
              f"- not compared: {pairing['kind_mismatch']:,} with outputs of different kinds, "
              f"{pairing['length_mismatch']:,} with different numbers of predictions"]
    if pairing["paired"] == 0:
        lines.append("- nothing paired: production and shadow records share no inferenceId. SageMaker copies the caller's "
                     "`X-Amzn-SageMaker-Inference-Id` (boto3: `InferenceId=`) into both; requests without it cannot be paired.")
    numeric = report["numeric"]
    lines += ["", "## Numeric outputs", ""]
    if numeric:
        lines += [f"{numeric['predictions']:,} paired predictions; differences are shadow − production.", "",
                  "| measure | value |", "|---|---:|",
                  f"| mean difference | {_number(numeric['mean_diff'])} |",
                  f"| mean absolute difference | {_number(numeric['mean_abs_diff'])} |",
                  f"| median absolute difference | {_number(numeric['median_abs_diff'])} |",
                  f"| p99 absolute difference | {_number(numeric['p99_abs_diff'])} |",
                  f"| max absolute difference | {_number(numeric['max_abs_diff'])} |",
                  f"| within ±{settings['tolerance']:g} | {_percent(numeric['within_tolerance'])} |",
                  f"| correlation (Pearson) | {_number(numeric['correlation'])} |",
                  f"| Kolmogorov-Smirnov statistic | {_number(numeric['ks'])} |",
                  f"| PSI (production deciles) | {_number(numeric['psi'])} |"]
    else:
        lines.append("No paired numeric predictions.")
    labels = report["labels"]
    lines += ["", "## Labels", ""]
    if labels:
        names = sorted({p for p in labels["confusion"]} | {s for row in labels["confusion"].values() for s in row})
        lines += [f"Agreement {_percent(labels['agreement'])} over {labels['predictions']:,} predictions"
                  + (f" (numeric outputs: label 1 when ≥ {settings['threshold']:g})." if numeric else "."), "",
                  "| production ↓ / shadow → | " + " | ".join(f"`{n}`" for n in names) + " |",
                  "|---|" + "---:|" * len(names)]
        for p_label in names:
            row = labels["confusion"].get(p_label, {})
            lines.append(f"| `{p_label}` | " + " | ".join(f"{row.get(n, 0):,}" for n in names) + " |")
    else:
        lines.append("No paired label predictions.")
    lines += ["", "## Per hour (UTC, production record's hour)", "",
              f"| hour | records {production} | records {shadow} | paired | mean abs diff | within tolerance | KS | PSI | agreement |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for hour in report["hourly"]:
        n, lab = hour["numeric"] or {}, hour["labels"] or {}
        lines.append(f"| {hour['hour']} | {hour['records'][production]:,} | {hour['records'][shadow]:,} | {hour['paired']:,} | "
                     f"{_number(n.get('mean_abs_diff'))} | {_percent(n.get('within_tolerance'))} | {_number(n.get('ks'))} | "
                     f"{_number(n.get('psi'))} | {_percent(lab.get('agreement'))} |")
    if report["samples"]:
        lines += ["", "## Samples of problems", ""]
        for kind, items in report["samples"].items():
            lines.append(f"- **{kind.replace('_', ' ')}**:")
            for item in items:
                if "inference_id" in item:
                    lines.append(f"  - inferenceId `{item['inference_id']}`")
                else:
                    excerpt = item["excerpt"].replace("`", "'")
                    lines.append(f"  - {item['variant']} `{os.path.basename(item['file'])}`: `{excerpt[:160]}`")
    if plots:
        lines += ["", "## Plots", ""] + [f"![{kind}]({name})" for kind, name in plots.items()]
    return "\n".join(lines) + "\n"
