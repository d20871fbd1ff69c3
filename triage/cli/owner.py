"""Owner commands: rules check, classify, eval, label, lint."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from triage.cli.common import (
    _agent,
    agent_option,
    cli,
    emit_json,
    json_option,
    open_store,
    settings_from,
)
from triage.errors import RulesError

# -- rules --------------------------------------------------------------------


@cli.group()
def rules() -> None:
    """Owner tools for rule files and templates."""


@rules.command("check")
@click.pass_context
def rules_check(ctx: click.Context) -> None:
    """Validate every rule file and template; exit 2 naming file and key on error.

    Example: triage rules check
    """
    from triage import ruleset

    settings = settings_from(ctx)
    problems = ruleset.check(settings.rules_dir, settings.templates_dir)
    if problems:
        raise RulesError(problems)
    click.echo(f"rules ok: {settings.rules_dir} and {settings.templates_dir}")


def owner_rules_dir(ctx: click.Context) -> Path:
    """The configured rules folder, or the shipped one when no triage.toml is found."""
    from triage import config
    from triage.errors import ConfigError

    try:
        path = config.find_config(ctx.obj["config_path"])
    except ConfigError:
        return config.shipped_dir("rules")
    return config.load(path).rules_dir


def _read_input(source: str | None) -> bytes:
    if source in (None, "-"):
        return sys.stdin.buffer.read()
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise click.BadParameter(f"cannot read {source}: {exc.strerror}") from None


@cli.command()
@click.argument("source", required=False, metavar="[FILE|-]")
@click.option("--text", help="Classify this plain text instead of a message.")
@click.option("--sender", default="", help="With --text: the sender's address (for customer lists).")
@json_option
@click.pass_context
def classify(ctx: click.Context, source: str | None, text: str | None, sender: str, as_json: bool) -> None:
    """Detect anger, complaint and archetypes in one message, with the evidence.

    Reads a raw RFC 5322 message from FILE or standard input; only the
    customer's new words count (quotes and signature are removed).

    Example: triage classify --text "This is the SECOND time it broke!!!" --json
    """
    from triage.detect.engine import Detector, classify_text
    from triage.message import ParseError, parse

    detector = Detector.load(owner_rules_dir(ctx))
    if text is None:
        try:
            message = parse(_read_input(source))
        except ParseError as exc:
            raise click.BadParameter(f"not a readable message: {exc}") from None
        text, sender, subject = message.text, sender or message.sender_address, message.subject
    else:
        subject = ""
    detection = classify_text(detector, text, sender, subject)
    if as_json:
        emit_json(detection.to_dict())
        return
    arch = ", ".join(f"{a.name} ({a.rule})" for a in detection.archetypes) or "none"
    click.echo(f"level: {detection.level}  score: {detection.score:.2f}  angry: {'yes' if detection.angry else 'no'}  "
               f"complaint: {'yes' if detection.complaint else 'no'}")
    click.echo(f"archetypes: {arch}")
    if detection.topic:
        click.echo(f"topic: {detection.topic}")
    for ask in detection.asks:
        extra = "".join(f"  {k}: {getattr(ask, k)}" for k in ("when", "detail")
                        if getattr(ask, k) and getattr(ask, k) != ask.text)
        click.echo(f"ask: {ask.kind} {ask.text!r}  {ask.rule}{extra}" + (f"  ! {ask.flag}" if ask.flag else ""))
    if detection.facts.deadline:
        click.echo(f"their deadline: {detection.facts.deadline}")
    click.echo("evidence:")
    for ev in detection.evidence:
        where = "subject " if ev.where == "subject" else ""
        click.echo(f"  {where}{ev.start:>5}-{ev.end:<5} {ev.text!r:<40} {ev.rule}  {ev.weight:+.2f}")
    if not detection.evidence:
        click.echo("  (none)")


@cli.command("eval")
@click.argument("csv_files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path), metavar="[FILE.csv]...")
@click.option("--labels", "use_labels", is_flag=True, help="Evaluate on agents' corrections stored by `triage label`.")
@click.option("--errors", "errors", type=click.IntRange(min=0), default=0, metavar="N",
              help="Also list the N worst false positives and false negatives per label, with the rules that fired.")
@json_option
@click.pass_context
def eval_cmd(ctx: click.Context, csv_files: tuple[Path, ...], use_labels: bool, errors: int, as_json: bool) -> None:
    """Measure the rules on labelled data (precision, recall, F1, correlations).

    Each CSV has a header with `text` and any of `angry` (0/1), `intensity`
    (0-1), `complaint` (0/1), `archetype` (a name, or empty). Several files
    are measured in one run and summed up in one table; `--json` prints one
    report for one file, and `{"files": [report, ...]}` for several.

    Example: triage eval tickets.csv reviews.csv --errors 5
    """
    from triage import evaluate
    from triage.detect.engine import Detector

    if bool(csv_files) == use_labels:
        raise click.UsageError("give CSV files or --labels (one of them)")
    if use_labels:
        settings = settings_from(ctx)
        detector = Detector.load(settings.rules_dir)
        with open_store(settings) as store:
            reports = [evaluate.evaluate_labels(store.labelled_messages(), detector)]
    else:
        detector = Detector.load(owner_rules_dir(ctx))
        reports = [evaluate.evaluate_csv(path, detector, errors=errors) for path in csv_files]
    if as_json:
        emit_json(reports[0] if len(reports) == 1 else {"files": reports, "rules_version": detector.rules_version})
        return
    if len(reports) == 1:
        _eval_details(reports[0])
    else:
        _eval_table(reports)
    for report in reports:
        if report.get("errors"):
            _eval_errors(report)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _eval_details(report: dict[str, Any]) -> None:
    click.echo(f"{report['n']} labelled text(s), rules version {report.get('rules_version', '?')}")
    for name in ("angry", "complaint"):
        if name in report:
            m = report[name]
            extra = f"  macro-F1 {m['macro_f1']:.3f}" if "macro_f1" in m else ""
            click.echo(f"{name:<10} precision {m['precision']:.3f}  recall {m['recall']:.3f}  F1 {m['f1']:.3f}{extra}  (n={m['n']})")
    if "intensity" in report:
        m = report["intensity"]
        click.echo(f"intensity  Pearson {_fmt(m['pearson'])}  Spearman {_fmt(m['spearman'])}  (n={m['n']})")
    if "archetype" in report:
        m = report["archetype"]
        click.echo(f"archetype  accuracy {m['accuracy']:.3f}  (n={m['n']})")
        for gold, row in m["confusion"].items():
            click.echo(f"  {gold:<12} " + "  ".join(f"{p}:{c}" for p, c in row.items() if c))
    if "asks" in report:
        _asks_table(report["asks"])


def _asks_table(m: dict[str, Any]) -> None:
    click.echo(f"asks       precision {m['precision']:.3f}  recall {m['recall']:.3f}  F1 {m['f1']:.3f}  "
               f"exact {m['exact']:.3f}  (n={m['n']})")
    for kind, k in m["per_kind"].items():
        click.echo(f"  {kind:<14} precision {k['precision']:.3f}  recall {k['recall']:.3f}  F1 {k['f1']:.3f}  "
                   f"(rows {k['support']}, tp {k['tp']}, fp {k['fp']}, fn {k['fn']})")


def _eval_table(reports: list[dict[str, Any]]) -> None:
    """One line per file: the headline figure of each label it has (- where it has none)."""
    click.echo(f"rules version {reports[0].get('rules_version', '?')}")
    head = ("file", "n", "angry P/R/F1", "complaint P/R/F1", "macro-F1", "intensity r", "archetype acc", "asks P/R/F1")
    rows = []
    for r in reports:
        angry, complaint = r.get("angry"), r.get("complaint")
        rows.append((
            Path(str(r.get("file", "?"))).name,
            str(r["n"]),
            f"{angry['precision']:.2f}/{angry['recall']:.2f}/{angry['f1']:.3f}" if angry else "-",
            f"{complaint['precision']:.2f}/{complaint['recall']:.2f}/{complaint['f1']:.3f}" if complaint else "-",
            f"{complaint['macro_f1']:.3f}" if complaint else "-",
            _fmt(r["intensity"]["pearson"]) if "intensity" in r else "-",
            f"{r['archetype']['accuracy']:.3f}" if "archetype" in r else "-",
            f"{r['asks']['precision']:.2f}/{r['asks']['recall']:.2f}/{r['asks']['f1']:.3f}" if "asks" in r else "-",
        ))
    widths = [max(len(head[i]), *(len(row[i]) for row in rows)) for i in range(len(head))]
    for row in (head, *rows):
        click.echo("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))))
    for r in reports:
        if "asks" in r:
            click.echo(f"\nasks in {Path(str(r.get('file', '?'))).name}:")
            _asks_table(r["asks"])


def _eval_errors(report: dict[str, Any]) -> None:
    click.echo(f"\nworst errors in {report.get('file', 'the labels')}:")
    for label, lists in report["errors"].items():
        for kind in ("false_positives", "false_negatives"):
            if not lists[kind]:
                continue
            click.echo(f"{label} {kind.replace('_', ' ')}:")
            for e in lists[kind]:
                rules = ", ".join(e["rules"]) or "(no rule fired)"
                click.echo(f"  {e['score']:+.2f}  {e['text']!r}")
                click.echo(f"         rules: {rules}")


@cli.command()
@click.argument("message_id", type=int, metavar="MESSAGE")
@click.option("--angry", type=click.Choice(["yes", "no"]), help="Was the message angry?")
@click.option("--archetype", help="The right archetype, or 'none'.")
@agent_option
@click.pass_context
def label(ctx: click.Context, message_id: int, angry: str | None, archetype: str | None, agent: str | None) -> None:
    """Record an agent's correction of a detection (used by `triage eval --labels`).

    MESSAGE is the stored message's id (shown by `triage show ID --json`).

    Example: triage label 42 --angry no --archetype meek
    """
    from triage import labels
    from triage.detect import ARCHETYPES

    if angry is None and archetype is None:
        raise click.UsageError("give --angry and/or --archetype")
    if archetype is not None and archetype not in (*ARCHETYPES, "none"):
        raise click.BadParameter(f"expected one of {', '.join(ARCHETYPES)}, none", param_hint="--archetype")
    settings = settings_from(ctx)
    with open_store(settings) as store:
        labels.record(store, message_id, None if angry is None else angry == "yes", archetype, _agent(agent, store))
    click.echo(f"Label recorded for message {message_id}.")


@cli.command()
@click.argument("source", required=False, metavar="[FILE|-]")
@json_option
@click.pass_context
def lint(ctx: click.Context, source: str | None, as_json: bool) -> None:
    """Check a text for passive-aggressive or dismissive phrasing (rules/tone.toml).

    Exits 1 when there are findings, so scripts can use it as a check.

    Example: echo "As per my last email, calm down." | triage lint - --json
    """
    from triage.drafting.tone import lint_text

    text = _read_input(source).decode("utf-8", errors="replace")
    result = lint_text(text, owner_rules_dir(ctx))
    if as_json:
        emit_json(result)
    else:
        for f in result["findings"]:
            click.echo(f"{f['start']}-{f['end']} {f['text']!r}: {f['reason']} Try: {f['suggestion']}")
        click.echo(f"{len(result['findings'])} finding(s).")
    if result["findings"]:
        sys.exit(1)
