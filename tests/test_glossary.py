"""The glossary: every link to it from a notebook names a term it has, and the book points those links at its own page."""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
from conftest import load_tool

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]-*.ipynb"))
GLOSSARY = REPO / "docs" / "glossary.md"
book = load_tool("book")


def anchors(markdown: str) -> set[str]:
    """The anchors GitHub and myst (``myst_heading_anchors``) give the ``## `` headings: lower case, punctuation
    dropped, spaces to hyphens."""
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in re.findall(r"(?m)^## (.+)$", markdown)}


def links(text: str) -> list[tuple[str, str]]:
    """(page, anchor) of every link to docs/glossary.md or docs/notation.md in ``text`` (anchor '' when none)."""
    return re.findall(r"\]\((?:https://github\.com/fla-teach/fla/blob/[^/]+/docs/)?(glossary|notation)\.md(?:#([\w-]+))?\)",
                      text)


def test_every_link_to_the_glossary_names_one_of_its_terms():
    terms = anchors(GLOSSARY.read_text())
    assert {"map", "iou", "p3-p4-p5", "the-blog-post", "sdpa", "dwc", "c2f"} <= terms
    found = []
    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "markdown":
                found += [(path.name, page, anchor) for page, anchor in links(cell.source)]
    found += [("glossary.md", "glossary", a) for a in re.findall(r"\]\(#([\w-]+)\)", GLOSSARY.read_text())]
    assert any(page == "glossary" for _, page, _ in found), "no notebook links the glossary"
    broken = [f for f in found if f[1] == "glossary" and f[2] and f[2] not in terms]
    assert not broken, f"links to terms the glossary lacks: {broken}"


def test_the_book_links_its_own_reference_pages():
    url = "see [mAP](https://github.com/fla-teach/fla/blob/v0.3.0/docs/glossary.md#map) and [the table](https://github.com/fla-teach/fla/blob/v0.3.0/docs/notation.md)"
    assert book.REFERENCE_URL.sub(r"\1.md", url) == "see [mAP](glossary.md#map) and [the table](notation.md)"
    assert all((REPO / "docs" / f"{name}.md").is_file() for name in book.REFERENCE)
    assert all(name in (REPO / "book" / "index.md").read_text() for name in book.REFERENCE)  # in a toctree
