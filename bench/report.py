"""Turn a run's measurements into the markdown report (table, targets, plans)."""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bench import settings

if TYPE_CHECKING:
    from bench.run import CaseResult, RunResults

MAX_STATEMENTS = 5


def read_data_timing() -> dict[str, Any] | None:
    """Return the last data generation's timings (bench/.data/generation-time.json)."""
    try:
        return json.loads((settings.DATA_DIR / "generation-time.json").read_text())
    except (OSError, ValueError):
        return None


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def round_rps(result: CaseResult) -> list[float]:
    """Return the case's req/s per round (the mean of its runs in that round)."""
    return [statistics.fmean(r.rps for r in runs) for runs in result.rounds]


def ratio(results: dict[str, CaseResult], key: str, base: str) -> float | None:
    """Return the mean over rounds of (key's req/s ÷ base's req/s in the same round)."""
    mine, theirs = round_rps(results[key]), round_rps(results[base])
    pairs = [a / b for a, b in zip(mine, theirs, strict=False) if b]
    return _mean(pairs)


def _fmt(value: float | None, digits: int = 1, suffix: str = "") -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}{suffix}"


def _latency(result: CaseResult, attribute: str) -> float | None:
    return _mean([getattr(r, attribute) for runs in result.rounds for r in runs])


def table(run: RunResults) -> str:
    """Return the main table: one line per case."""
    results = run.results
    lines = [
        "| case | req/s | p50 ms | p99 ms | single-request median ms | SQL statements "
        "| × keyset | × Admin p0 | × Admin last |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, result in results.items():
        if not result.available:
            lines.append(f"| {result.case.title} | {result.note} | | | | | | | |")
            continue
        rps = _mean(round_rps(result))
        lines.append(
            "| "
            + " | ".join(
                [
                    result.case.title,
                    _fmt(rps),
                    _fmt(_latency(result, "p50_ms")),
                    _fmt(_latency(result, "p99_ms")),
                    _fmt(result.median_ms, 2),
                    str(len(result.statements)) if result.statement_status else "—",
                    _fmt(ratio(results, key, "keyset"), 2, "×"),
                    _fmt(ratio(results, key, "admin_first"), 1, "×"),
                    _fmt(ratio(results, key, "admin_last"), 0, "×"),
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def rounds_table(run: RunResults) -> str:
    """Return req/s of every run, in the order they ran (A B A B)."""
    lines = ["| case | " + " | ".join(f"round {n + 1}" for n in range(run.args.rounds)) + " |"]
    lines.append("|---|" + "---:|" * run.args.rounds)
    for result in run.results.values():
        if not result.available:
            continue
        cells = [", ".join(f"{r.rps:,.1f}" for r in runs) for runs in result.rounds]
        errors = sum(r.errors for runs in result.rounds for r in runs)
        note = f" ({errors} errors)" if errors else ""
        lines.append(f"| {result.case.title}{note} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


Check = tuple[str, str, bool | None]


def targets(run: RunResults) -> list[Check]:
    """Return (target, measured, met) for every target of the issue."""
    r = run.results
    checks: list[Check] = []

    def add(target: str, value: float | None, text: str, test: Callable[[float], bool]) -> None:
        checks.append(
            (
                target,
                text if value is not None else "not measured",
                None if value is None else test(value),
            )
        )

    first_vs_keyset = ratio(r, "history_first", "keyset")
    add(
        "History ≥ 0.7× the minimal keyset page's req/s",
        first_vs_keyset,
        f"{_fmt(first_vs_keyset, 2)}×",
        lambda v: v >= 0.7,
    )
    api_vs_keyset = ratio(r, "api_generations", "keyset") if "api_generations" in r else None
    add(
        "API GET /api/v1/generations ≥ 0.7× the minimal keyset page's req/s",
        api_vs_keyset,
        f"{_fmt(api_vs_keyset, 2)}×",
        lambda v: v >= 0.7,
    )
    first, oldest = _mean(round_rps(r["history_first"])), _mean(round_rps(r["history_oldest"]))
    slower = first / oldest if first and oldest else None
    add(
        "Oldest page within 1.1× of the first",
        slower,
        f"first ÷ oldest req/s = {_fmt(slower, 2)}",
        lambda v: v <= 1.1,
    )
    p0 = ratio(r, "history_first", "admin_first")
    add("History ≥ 20× Flask-Admin page 0", p0, f"{_fmt(p0, 1)}×", lambda v: v >= 20)
    last = ratio(r, "history_first", "admin_last")
    add("History ≥ 200× Flask-Admin's last page", last, f"{_fmt(last, 0)}×", lambda v: v >= 200)
    counted = {
        k: len(v.statements) for k, v in r.items() if v.case.server == "voxboard" and v.available
    }
    worst = max(counted.values()) if counted else None
    add(
        "≤ 5 SQL statements on every page and API call",
        worst,
        ", ".join(f"{k} {n}" for k, n in counted.items()),
        lambda v: v <= MAX_STATEMENTS,
    )
    history_plans = [p for p in run.plans if p.title.startswith("history")]
    if history_plans:
        bad = [p.title for p in history_plans if p.has_sort or p.seq_scans]
        rows = ", ".join(
            f"{p.title} {p.rows_examined:,} rows, {p.execution_ms:.1f} ms" for p in history_plans
        )
        checks.append(
            (
                "History statements: index scans, no Sort, cost not growing with the org",
                rows + (f"; Sort or Seq Scan in {', '.join(bad)}" if bad else ""),
                not bad,
            )
        )
    voices = r["voices"].median_ms
    add(
        "Voice library (2,000 custom voices) single-request median ≤ 10 ms",
        voices,
        f"{_fmt(voices, 2)} ms",
        lambda v: v <= 10,
    )
    analytics = r["analytics"].median_ms if r["analytics"].available else None
    if not r["analytics"].available:
        checks.append(("Analytics 90 days ≤ 20 ms", r["analytics"].note, None))
    else:
        add("Analytics 90 days ≤ 20 ms", analytics, f"{_fmt(analytics, 2)} ms", lambda v: v <= 20)
    if run.snapshot is not None and run.snapshot.seconds is None:
        checks.append(("Snapshot of one day with 1M generations < 2 s", run.snapshot.note, None))
    else:
        # Judged on the command's work: interpreter and app start-up is not the snapshot.
        seconds = run.snapshot.work_seconds if run.snapshot else None
        add(
            "Snapshot of one day with 1M generations < 2 s",
            seconds,
            f"{_fmt(seconds, 2)} s of work "
            f"({_fmt(run.snapshot.seconds if run.snapshot else None, 2)} s wall)",
            lambda v: v < 2,
        )
    growth = run.stream.growth_kib / 1024 if run.stream else None
    add(
        "Streaming 50 MB: worker RSS growth < 10 MB",
        growth,
        f"{_fmt(growth, 2)} MB",
        lambda v: v < 10,
    )
    factor = run.espeak[0] if run.espeak else None
    add("eSpeak ≥ 50× real time", factor, f"{_fmt(factor, 0)}×", lambda v: v >= 50)
    return checks


def _verdict(met: bool | None) -> str:
    return {True: "met", False: "**missed**", None: "—"}[met]


def render(run: RunResults) -> str:
    """Return the whole report as markdown."""
    fx = run.fixtures
    data = run.data_timing or {}
    lines = [
        f"# Voxboard benchmark, {run.started:%Y-%m-%d %H:%M} UTC",
        "",
        f"- Machine: {os.cpu_count()} cores; load average {run.load_before} before, "
        f"{run.load_after} after (other work shares these cores: compare ratios, not "
        "absolute figures)",
        f"- {run.postgres}; Voxboard as the row-level-security-bound web role "
        f"`{settings.WEB_ROLE}`, baselines as the owner `{settings.OWNER_ROLE}`",
        f"- gunicorn, 2 sync workers per app; load by {run.tool}, {run.args.connections} "
        f"connections, {run.args.seconds:.0f} s per case per round (at most "
        f"{run.args.max_requests:,} requests), {run.args.rounds} rounds A B A B, "
        f"{run.args.warmup:.0f} s warm-up per case",
        f"- Data: {spec_text()}; big org `{settings.BIG_SLUG}` holds {fx.org_rows:,} generations",
    ]
    if data:
        lines.append(
            f"- Data generation (`python -m bench.data`, {data.get('generated_at', '?')}): "
            f"{data.get('total_seconds', '?')} s"
        )
    lines += [
        "",
        "## Pages",
        "",
        table(run),
        "",
        "Ratios are of req/s, taken within each round "
        "and averaged. Single-request median: sequential requests, one connection each.",
        "",
        "### Every run (req/s)",
        "",
        rounds_table(run),
        "",
        "## Targets",
        "",
        "| target | measured | |",
        "|---|---|---|",
    ]
    lines += [f"| {t} | {m} | {_verdict(ok)} |" for t, m, ok in targets(run)]
    lines += ["", "## Other measurements", ""]
    if run.stream:
        s = run.stream
        lines.append(
            f"- Streaming {s.size / 1048576:.1f} MiB through the audio endpoint (one sync "
            f"worker): RSS {s.before_kib / 1024:.1f} MiB before, peak {s.peak_kib / 1024:.1f} "
            f"MiB, {s.after_kib / 1024:.1f} MiB after → growth {s.growth_kib / 1024:.2f} MiB "
            f"({s.seconds:.2f} s); the warm-up stream before it grew RSS by "
            f"{s.first_growth_kib / 1024:.2f} MiB"
        )
    elif run.stream_note:
        lines.append(f"- Streaming: {run.stream_note}")
    if run.snapshot:
        lines.append(
            f"- `flask analytics snapshot`: {_fmt(run.snapshot.seconds, 2, ' s')} — "
            f"{run.snapshot.note}"
        )
    if run.espeak:
        factor, audio, wall = run.espeak
        lines.append(
            f"- eSpeak NG: {audio:.1f} s of audio in {wall:.3f} s → {factor:.0f}× real time"
        )
    if run.seed:
        lines.append(
            f"- `flask seed` on a fresh database: {_fmt(run.seed.seconds, 2, ' s')} "
            f"({run.seed.note})"
        )
    if data.get("phases"):
        lines += ["", "### Data generation phases", "", "| phase | s |", "|---|---:|"]
        lines += [f"| {k} | {v} |" for k, v in data["phases"].items()]
    lines += ["", "## Query plans", ""]
    for plan in run.plans:
        summary = (
            f"indexes {', '.join(plan.indexes) or 'none'}; Sort: {'yes' if plan.has_sort else 'no'}"
        )
        if plan.seq_scans:
            summary += f"; Seq Scan on {', '.join(plan.seq_scans)}"
        lines += [
            f"### {plan.title} ({plan.execution_ms:.2f} ms; {summary})",
            "",
            "```",
            plan.text,
            "```",
            "",
        ]
    lines += ["## SQL statements per page", ""]
    for result in run.results.values():
        lines.append(
            f"- **{result.case.title}** (`{result.case.path}`, status "
            f"{result.statement_status}): {len(result.statements)}"
        )
        lines += [f"  1. `{s[:160]}{'…' if len(s) > 160 else ''}`" for s in result.statements]
    lines.append("")
    return "\n".join(lines)


def spec_text() -> str:
    from bench.settings import Spec

    s = Spec.from_env()
    return (
        f"{s.orgs:,} orgs, {s.generations:,} generations over {s.days} days, "
        f"{s.big_custom_voices:,} custom voices in the big org"
    )
