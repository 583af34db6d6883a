"""The explorer page: one self-contained HTML file (no server, no network) with Vega
(pipeline.explorer.vega), the page's script and style (page.js, page.css beside this
module) and the runs (pipeline.explorer.pack) inlined."""

from __future__ import annotations

import html
from pathlib import Path

from pipeline.explorer import pack, vega

HERE = Path(__file__).parent
SCRIPT, STYLE, BODY = HERE / "page.js", HERE / "page.css", HERE / "page.html"  # body: a template
LEVELS = ("scenario", "loss", "optimizer", "clip", "lr", "seed")


def selects() -> str:
    return "".join(f'<label>{k}<select id="{k}"></select></label>' for k in LEVELS)


def html_page(index: dict[str, object], values: pack.Floats, kinds: dict[str, str]) -> str:
    """The page: `index` (JSON: runs and everything else) and `values` (the runs' float
    block) packed, `kinds`: what each kind of run is, listed on the page."""
    code, version = vega.bundle()
    doc = pack.encode_json({**index, "kinds": kinds})
    block = pack.packed(pack.shuffled(values))
    size = f"{(len(doc) + len(block)) / 1e6:.1f} MB of data in a {{total}} MB page"
    walk: dict[str, object] = index["walkthrough"]  # type: ignore[assignment]
    body = BODY.read_text(encoding="utf-8").format(
        selects=selects(),
        seed=walk["seed"],
        lr=walk["lr"],
        vega=version,
        size=size,  # type: ignore[index]
        kinds="".join(f"<li>{html.escape(text)}</li>" for text in kinds.values()),
    )
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "<title>gradlab explorer</title>\n"
        f"<style>\n{STYLE.read_text(encoding='utf-8')}</style>\n"
        f"<script>{code}</script>\n</head>\n<body>\n{body}"
        f'<script type="application/octet-stream" id="gradlab-index">{doc}</script>\n'
        f'<script type="application/octet-stream" id="gradlab-values">{block}</script>\n'
        f"<script>\n{SCRIPT.read_text(encoding='utf-8')}</script>\n</body>\n</html>\n"
    )
    total = f"{len(page.encode('utf-8')) / 1e6:.1f}"
    return page.replace("{total} MB page", f"{total} MB page", 1)
