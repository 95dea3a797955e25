"""``hnlab summarize ID``: a story's article and thread, summarised with their sources cited."""

from __future__ import annotations

import json
import textwrap

import click

from hnlab.cli.base import Context, cli, pass_ctx


@cli.command("summarize")
@click.argument("story_id", type=click.IntRange(1))
@click.option("--json", "as_json", is_flag=True, help="Print the summaries as JSON.")
@click.option("--refresh", is_flag=True, help="Make them again even if stored for this input.")
@click.option("--width", type=click.IntRange(40), default=100, help="Wrap text at this width.")
@pass_ctx
def summarize(obj: Context, story_id: int, as_json: bool, refresh: bool, width: int) -> None:
    """Summarise a story's article and its thread; the thread's sentences cite comments
    as [c<ID>], each checked against the thread. With HNLAB_LLM_URL unset, or when the
    model fails, the summaries are extractive (offline)."""
    from hnlab import analysis
    from hnlab.store import db

    settings = obj.settings()
    url = db.prepare(settings).url
    found = analysis.summarize(story_id, engine=url, settings=settings, refresh=refresh)
    for part in (found.article, found.thread):
        if part is not None and part.note:
            click.echo(f"Warning: {part.note}", err=True)
    if as_json:
        click.echo(json.dumps(found.as_dict(), sort_keys=True))
        return
    click.echo(f"{found.title or '[deleted]'}  (story {story_id})")
    for label, part, note in (
        ("Article", found.article, found.article_note),
        ("Thread", found.thread, found.thread_note),
    ):
        click.echo("")
        if part is None:
            click.echo(f"{label}: none: {note}")
            continue
        how = part.model if part.method == "llm" else "extractive"
        checked = (
            f", {part.dropped} sentences dropped by the citation check" if part.dropped else ""
        )
        click.echo(
            f"{label} ({how}, {part.prompt_version}, input {part.input_hash[:12]}{checked}):"
        )
        for line in textwrap.wrap(part.text, width - 2):
            click.echo(f"  {line}")
