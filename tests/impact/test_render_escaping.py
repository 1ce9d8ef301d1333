"""The impact report's Markdown with hostile names (owners, Slack channels, domains, models, DAGs,
tasks, columns): rendered by a real CommonMark + GFM-tables parser (markdown-it-py), every table
keeps its columns and no name becomes an HTML element, a link or a code span's end."""

from __future__ import annotations

import re

from handoff.impact.render import render_markdown
from handoff.impact.report import Change, Consumer, ModelImpact, Report
from markdown_it import MarkdownIt

HOSTILE = ['<script>alert(1)</script>', '<img src=x onerror=alert(1)>', 'a | b', '[x](https://evil.example)',
           '`tick` ``two``', '**bold** ~~gone~~', 'back\\slash', 'line\nbreak', '&amp; &lt;']


def _report(name: str) -> Report:
    reader = Consumer(domain=f"dom {name}", dag_id=f"dag {name}", task_id=f"task {name}", model=f"m {name}",
                      owner=f"owner {name}", slack=f"#chan {name}", depth=1, direct=True)
    far = Consumer(domain=f"far {name}", dag_id=f"fdag {name}", task_id=f"ftask {name}", model=f"fm {name}",
                   owner=f"fowner {name}", slack=f"#far {name}", depth=2, direct=False,
                   via=(f"shop.{name}", f"dom.{name}"))
    changes = (Change("column_removed", f"column `{name}` removed (columns from sql); read by dom.{name}",
                      columns=(name,)),)
    consumed = ModelImpact(resource_type="model", name=f"orders {name}", version=None, unique_id="model.shop.orders",
                           task_id="orders", access_base="public", access_head="public", changes=changes,
                           lookup_name=f"orders {name}", consumers=(reader, far))
    quiet = ModelImpact(resource_type="model", name=f"quiet {name}", version=None, unique_id="model.shop.quiet",
                        task_id="quiet", access_base="public", access_head="public", changes=changes,
                        lookup_name=f"quiet {name}", consumers=())
    internal = ModelImpact(resource_type="model", name=f"inner {name}", version=None, unique_id="model.shop.inner",
                           task_id="inner", access_base=f"private {name}", access_head=f"private {name}",
                           changes=changes, lookup_name=f"inner {name}", consumers=())
    return Report(domain="shop", project="shop", models=(consumed, quiet, internal), consumers_checked=True)


def _tables(rendered: str) -> list[list[int]]:
    """The number of cells of every row of every table in the rendered HTML."""
    found = []
    for table in re.findall(r"(?s)<table>(.*?)</table>", rendered):
        found.append([len(re.findall(r"<t[hd]\b", row)) for row in re.findall(r"(?s)<tr>(.*?)</tr>", table)])
    return found


def test_every_name_in_the_impact_report_stays_text():
    parser = MarkdownIt("commonmark").enable("table").enable("strikethrough")
    for name in HOSTILE:
        markdown = render_markdown(_report(name))
        rendered = parser.render(markdown)
        assert "<script" not in rendered and "<img" not in rendered, (name, markdown)
        assert "<a " not in rendered and "<strong>bold" not in rendered and "<s>gone" not in rendered, name
        shapes = _tables(rendered)
        assert len(shapes) == 5, (name, markdown)  # talk to, the model's changes and consumers, quiet, internal
        for rows in shapes:
            assert len(set(rows)) == 1, (name, rows, markdown)  # no name added or removed a column
        text = re.sub(r"<[^>]+>", "", rendered)
        import html

        shown = html.unescape(text)
        assert " ".join(name.split()) in shown, (name, shown)  # the name itself is shown, as text


def test_a_huge_report_stays_under_a_pr_comments_limit():
    """Many changed models with many consumers, one name of 100,000 characters: the Markdown stays
    under GitHub's 65,536 characters, says how many model sections it left out and where the whole
    report is, shows a long name cut with "…", and lists at most MAX_TASKS tasks per DAG."""
    from handoff.impact import render

    report = _report_with(models=120, consumers_per_model=80, long_name="m" * 100_000)
    text = render.render_markdown(report)
    assert len(text) < 65_536
    assert "more model sections not shown" in text and "--format json" in text
    assert "m" * render.MAX_VALUE + "…" in text and "m" * (render.MAX_VALUE + 1) not in text
    assert " more" in text  # a DAG's task list cut after MAX_TASKS


def _report_with(*, models: int, consumers_per_model: int, long_name: str) -> Report:
    """``models`` changed public models, each read by ``consumers_per_model`` tasks of one DAG; the
    first model's reader domain has a ``long_name``."""
    sections = []
    for m in range(models):
        readers = tuple(Consumer(domain=long_name if m == 0 else f"dom{m % 7}", dag_id=f"dom{m % 7}__daily",
                                 task_id=f"task_{m}_{c}", model=f"model_{m}_{c}", owner=f"team-{m % 7}",
                                 slack=f"#chan-{m % 7}", depth=1, direct=True)
                        for c in range(consumers_per_model))
        changes = (Change("column_removed", f"column `col{m}` removed (columns from sql)", columns=(f"col{m}",)),)
        sections.append(ModelImpact(resource_type="model", name=f"mart_{m:03d}", version=None,
                                    unique_id=f"model.shop.mart_{m:03d}", task_id=f"mart_{m:03d}",
                                    access_base="public", access_head="public", changes=changes,
                                    lookup_name=f"mart_{m:03d}", consumers=readers))
    return Report(domain="shop", project="shop", models=tuple(sections), consumers_checked=True)
