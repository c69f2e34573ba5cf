"""Prose equals outputs: every number a notebook's text quotes is printed beside it.

    python tests/prose_numbers.py EXECUTED.ipynb ...   # lists the numbers not found (e.g. the book's full-mode copies)

The rule (``tests/test_prose_numbers.py`` applies it to the notebooks executed in quick mode, as CI runs them):

- **What is checked.** Every number in a markdown cell: digits, with thousands separators, decimals, a
  percent sign, ``10^{-4}`` and ``1e-4``, inside formulas too. Not checked: code spans and code blocks (names),
  link targets, HTML tags, numbers glued to letters (P3, yolov8n, fp16, float32, 2N), exponents and subscripts
  (``N^2``, ``D_0``), references (Eq. 4, Eqs. 10–11, §3.1, Section 2, notebook 02, Fig. 5, Appendix B,
  exercise 2, arXiv ids), list numbers, citation years, an exercise set inside a section (from "**Your turn.**" to
  the end of its cell: the problem's givens), the **Time:** sentence
  (``test_header_times_are_the_readmes`` checks it against the README's time table instead), and two
  sections: "Further reading", and "Exercises", whose numbers are the problems' givens and the answers
  derived from them (the exercises' checkers test those), not quotes of outputs.
- **Beside it.** The outputs and the code of the code cells of the same section (a ``## `` heading up to the
  next); a section without code cells (the introduction, takeaways, exercises, solutions, appendices without
  code) is checked against the whole notebook. The outputs of the introduction's cells (N, d, the device: the
  notebook's givens) count as beside every section. Widgets' texts count as the output of the cell that shows them.
- **Within rounding.** A quoted number matches a printed one rounded to the quoted digits (2.5 matches 2.47,
  0.2 matches 0.203, 80 matches 79.6); after "about", "≈", "~", "roughly", "nearly" or "almost" within 10 %.
  Signs are ignored.
- **From elsewhere.** Numbers that no output prints — equation constants, the paper's numbers, sizes a
  sentence names — are allowed per notebook (``ALLOWED`` in the test), each list with its reason.
- **Quick mode prints other numbers than full mode** (fewer, smaller sizes; machine-dependent times). So the
  prose quotes only numbers that both modes print: counts, formulas, GFLOPs, ranks. A measurement that
  depends on the mode or the machine (a time, a peak of memory, an exponent fitted to timings) is printed by
  the cell that measures it, in a sentence of its own, and the prose speaks of it without digits. The same
  check can be run on the full-mode executions (command line above); it should find the same.
"""
from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass

#: text an approximate number follows
APPROX = re.compile(r"(about|≈|~|roughly|nearly|almost|around)\s*\$?\s*$", re.I)
#: references to parts of the text or of other works: the number names a place, it is not a quantity
REFERENCE = re.compile(
    r"(?:\bEqs?\.|§|\b[Ss]ections?|\bnotebooks?|\bNotebooks?|\bFig\.|\bTab\.|\bTable|\bAppendix|\bappendix|"
    r"\b[Ee]xercises?|\bSteps?|\bstep|\barXiv|\bProposition|\bcells?|\bPart|\bpart)\s*"
    r"\d+(?:\.\d+)*(?:\s*(?:[–,-]|and|or|to)\s*\d+(?:\.\d+)*)*[a-z]?"
)
NUMBER = re.compile(
    r"(?<![\w.^_\\{])(?P<num>\d{1,3}(?:,\d{3})+(?!\d)|\d+(?:\.\d+)?)(?:\s*(?:\\cdot|·|×)\s*10\^\{?(?P<exp>[-−]?\d+)\}?|"
    r"[eE](?P<e>[-−+]?\d+))?(?!\w|\.\d)"
)
POWER_OF_TEN = re.compile(r"(?<![\w.])10\^\{?([-−]?\d+)\}?")


@dataclass(frozen=True)
class Quote:
    """A number in the prose: its text, its value, the cell it stands in, and a little context."""

    text: str
    value: float
    decimals: int
    approx: bool
    cell: int
    context: str
    pos: int = 0  # where it stands in ``text``
    text_of_cell: str = ""  # the cell's prose as checked (``_clean``)


def _clean(markdown: str) -> str:
    """The prose without what holds numbers that are not quantities (code, links, tags, references)."""
    text = re.sub(r"```.*?```", " ", markdown, flags=re.S)
    text = re.sub(r"`[^`]*`", " ", text)
    text = re.sub(r"\]\([^)]*\)", "] ", text)  # link targets
    text = re.sub(r"https?://\S+", " ", text)
    text = re.sub(r"<[^>]+>", " ", text)
    text = re.sub(r"\*\*Time:\*\*[^*]*?(?=\*\*|$)", " ", text, flags=re.S)  # checked against the README instead
    text = re.sub(r"\*\*Your turn\.\*\*.*", " ", text, flags=re.S)  # an exercise's givens, as in "Exercises"
    text = text.replace("²", "^2").replace("³", "^3").replace("−", "-").replace("\u2009", " ")
    text = REFERENCE.sub(" ", text)
    text = re.sub(r"(?m)^#+\s*\d+\s*[.·]", " ", text)  # "# 01 · Title", "## 3. Title"
    text = re.sub(r"(?m)^\s*(?:[-*]\s*)?\**\d+\.\**\s", " ", text)  # numbered list items, "**1. Title**"
    text = re.sub(r"(\b[A-Z][\w-]*\.?,?\s)((?:19|20)\d\d)\b", lambda m: m.group(1) + " " * 4, text)  # "ICCV 2023", "Vetterli 2007"
    text = re.sub(r"\*\*\d+\.", " ", text)
    return re.sub(r"\s", " ", text)  # one line: an allowed snippet matches across a line break


def quotes(markdown: str, cell: int = 0) -> list[Quote]:
    """The numbers a markdown cell quotes."""
    text = _clean(markdown)
    found = []
    for m in POWER_OF_TEN.finditer(text):  # 10^{-4} alone
        found.append(Quote(m.group(0), 10.0 ** int(m.group(1).replace("−", "-")), 99, False, cell,
                           text[max(0, m.start() - 40):m.end() + 20], m.start(), text))
    found_at = POWER_OF_TEN.sub(lambda m: " " * len(m.group(0)), text)  # the same positions, those numbers blanked
    for m in NUMBER.finditer(found_at):
        num = m.group("num").replace(",", "")
        value = float(num)
        decimals = len(num.split(".")[1]) if "." in num else 0
        exp = m.group("exp") or m.group("e")
        if exp is not None:
            value *= 10.0 ** int(exp.replace("−", "-"))
            decimals = 99  # a power of ten is compared by value
        approx = bool(APPROX.search(text[max(0, m.start() - 12):m.start()]))
        found.append(Quote(m.group(0).strip(), value, decimals, approx, cell, text[max(0, m.start() - 40):m.end() + 20],
                           m.start(), text))
    return found


def printed_numbers(text: str) -> list[float]:
    """Every number in an output text (signs dropped; 1e-4 and 1,600 read as numbers)."""
    values = []
    text = text.replace("−", "-")
    for m in re.finditer(r"\d{1,3}(?:,\d{3})+(?!\d)|\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|\.\d+", text):
        values.append(float(m.group(0).replace(",", "")))
    return values


def matches(q: Quote, printed) -> bool:
    """Is the quoted number one of the printed ones, within rounding (or within 10 % after "about")?"""
    for v in printed:
        if q.decimals == 99:
            if math.isclose(v, q.value, rel_tol=1e-6):
                return True
            continue
        if abs(v - q.value) <= 0.5 * 10.0 ** -q.decimals + 1e-9 * max(1.0, abs(v)):
            return True
        if q.approx and abs(v - q.value) <= 0.1 * abs(q.value):
            return True
    return False


def _output_text(output, widget_texts: list[str]) -> str:
    if output.get("output_type") == "stream":
        return output.get("text", "")
    if output.get("output_type") == "error":
        return ""
    data = output.get("data", {})
    parts = []
    if "application/vnd.jupyter.widget-view+json" in data:
        parts += widget_texts
    if "text/markdown" in data:
        parts.append(data["text/markdown"])
    if "text/html" in data:
        html = re.sub(r"<style.*?</style>|<script.*?</script>", " ", data["text/html"], flags=re.S)
        parts.append(re.sub(r"<[^>]+>", " ", html))
    if "text/plain" in data and not any(k.startswith("image/") for k in data) and not parts:
        parts.append(data["text/plain"])
    return "\n".join(parts)


def _split_at_heading(source: str) -> list[str]:
    """A cell's text, split where a ``## `` heading starts: the part above belongs to the section before."""
    parts = re.split(r"(?m)^(?=## )", source)
    return [p for p in parts if p.strip()]


def is_allowed(q: Quote, allowed) -> bool:
    """An allow-list entry is a number (it allows every quote of that value) or a snippet of the prose around one
    quote (it allows the numbers it contains where it occurs, e.g. ``"\\kappa/2"``)."""
    for entry in allowed:
        entry = str(entry)
        if re.fullmatch(r"[\d,.]+", entry):
            if float(entry.replace(",", "")) == q.value:
                return True
        else:
            snippet = _clean(entry).strip()
            for m in re.finditer(re.escape(snippet), q.text_of_cell):
                if m.start() <= q.pos < m.end():
                    return True
    return False


def unmatched(nb, allowed=()) -> list[Quote]:
    """The quoted numbers that no output beside them prints, and that ``allowed`` does not list (``is_allowed``)."""
    widget_texts = []
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    for model in state.values():
        if model.get("model_name") == "HTMLModel":
            widget_texts.append(re.sub(r"<[^>]+>", " ", str(model["state"].get("value", ""))))

    # the notebook as sections of (markdown parts, code cells)
    blocks: list[dict] = [{"prose": [], "code": [], "title": ""}]
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            for part in _split_at_heading(cell.source):
                if part.startswith("## "):
                    blocks.append({"prose": [], "code": [], "title": part.splitlines()[0]})
                blocks[-1]["prose"].append((i, part))
        elif cell.cell_type == "code":
            blocks[-1]["code"].append(cell)

    def numbers_of(cells):
        values = []
        for c in cells:
            values += printed_numbers(c.source)
            for o in c.get("outputs", []):
                values += printed_numbers(_output_text(o, widget_texts))
        return values

    everywhere = numbers_of([c for c in nb.cells if c.cell_type == "code"])
    givens = numbers_of(blocks[0]["code"])  # what the introduction's cells print (N, d, the device) holds everywhere
    missing = []
    for block in blocks:
        title = block["title"].lower()
        if title.startswith(("## further reading", "## exercises")):
            continue
        printed = (numbers_of(block["code"]) + givens) if block["code"] else everywhere
        for i, text in block["prose"]:
            missing += [q for q in quotes(text, i) if not matches(q, printed) and not is_allowed(q, allowed)]
    return missing


def allowed_for(path) -> list[str]:
    """The allow-list of the notebook at ``path`` (by its number), from the test module."""
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_prose_numbers import ALLOWED

    return ALLOWED.get(Path(path).name[:2], [])


def main(argv=None) -> int:
    import nbformat

    bad = 0
    for path in argv if argv is not None else sys.argv[1:]:
        nb = nbformat.read(path, as_version=4)
        for q in unmatched(nb, allowed_for(path)):
            bad += 1
            print(f"{path}: cell {q.cell}: {q.text!r} not printed beside it: …{q.context.strip()}…")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
