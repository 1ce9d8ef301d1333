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
