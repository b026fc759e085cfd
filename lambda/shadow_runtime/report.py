"""The verdict report: JSON for machines, Markdown for people. Stdlib only."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .verdict import Verdict


def report_json(verdict: Verdict, context: Mapping[str, Any]) -> str:
    """The whole verdict and the test's context (endpoint, variants, window) as JSON."""
    return json.dumps({"context": dict(context), **verdict.to_dict()}, indent=2, sort_keys=True, default=str)


def _effect(metric: Mapping[str, Any]) -> tuple[str, str]:
    if metric["effect"] is None:
        return "-", "-"
    low, high = metric["interval"]
    if metric["kind"] == "agreement":
        return f"{metric['effect']:.2%} agree", f"{low:.2%} to {high:.2%}"
    if metric["kind"] == "error_rate":
        return f"{metric['effect'] * 100:+.3f} pp", f"{low * 100:+.3f} to {high * 100:+.3f} pp"
    return f"{metric['effect']:+.1%}", f"{low:+.1%} to {high:+.1%}"


def _value(metric: Mapping[str, Any], side: str) -> str:
    value = metric[side]
    if value is None:
        return "-"
    if metric["kind"] == "error_rate":
        return f"{value:.3%}"
    if metric["kind"] == "agreement":
        return f"{value:.2%}"
    return f"{value / 1000:.2f} ms" if metric["kind"] == "latency" else f"{value:.1f}"


def look_lines(decision: str, context: Mapping[str, Any]) -> list[str]:
    """Which look of a self-ending test this is and, when it decides before the end, what stopping saves."""
    look = context.get("look")
    if not look:
        return []
    lines = [f"- Look {look['number']} of {look['looks']}: {look['minutes']} minutes into the test, which ends "
             f"{look['test_end']}" + (" (the last look)" if look.get("final") else "")]
    hours = float(look.get("hours_left") or 0)
    if decision != "INCONCLUSIVE" and hours > 0:
        instances = context.get("shadow_instances")
        saved = f"{hours * instances:g} shadow instance-hours" if instances else "the shadow's instance-hours"
        lines.append(f"- Decided {hours:g} h before the planned end: stopping now saves {saved}")
    elif decision == "INCONCLUSIVE" and not look.get("final"):
        lines.append("- Not decided yet: judged again at the next look")
    return lines


def report_markdown(verdict: Verdict, context: Mapping[str, Any]) -> str:
    """A one-page summary: decision, score, traffic, one row per metric, the reasons."""
    data = verdict.to_dict()
    traffic = data["traffic"]
    share = traffic["observed_share"]
    lines = [
        f"# Shadow test verdict: **{data['decision']}** (score {data['score']:g}/100)",
        "",
        f"- Endpoint: `{context.get('endpoint_name', '?')}` — production `{context.get('production_variant', '?')}`, "
        f"shadow `{context.get('shadow_variant', '?')}`",
        f"- Window: {context.get('start', '?')} to {context.get('end', '?')} ({traffic['minutes']} minutes, "
        f"{traffic['paired_minutes']} with data on both sides)",
        f"- Requests: production {traffic['production_invocations']}, shadow {traffic['shadow_invocations']}"
        + (f" ({share:.1%} of production; expected {traffic['expected_share']:.0%})" if share is not None else ""),
    ]
    lines += look_lines(data["decision"], context)
    lines += [
        "",
        "| metric | status | production | shadow | shadow change | confidence interval | tolerance |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, metric in sorted(data["metrics"].items(), key=lambda kv: (not kv[1]["critical"], kv[0])):
        effect, interval = _effect(metric)
        tolerance = f"+{metric['tolerance'] * 100:.3g} pp" if metric["kind"] == "error_rate" \
            else f"min {metric['tolerance']:.2%}" if metric["kind"] == "agreement" else f"+{metric['tolerance']:.0%}"
        name = f"**{key}** (critical)" if metric["critical"] else key
        lines.append(f"| {name} | {metric['status']} | {_value(metric, 'production')} | {_value(metric, 'shadow')} "
                     f"| {effect} | {interval} | {tolerance} |")
    lines += ["", "## Why", ""] + [f"- {reason}" for reason in data["reasons"]]
    criteria = data["criteria"]
    critical = list(criteria["critical"]) + (["PredictionAgreement"] if criteria.get("min_agreement") is not None else [])
    lines += ["", f"Confidence {criteria['confidence']:.0%}; critical: {', '.join(critical)}; "
                  f"PROMOTE needs score >= {criteria['pass_score']:g}, REJECT below {criteria['marginal_score']:g}."]
    return "\n".join(lines) + "\n"
