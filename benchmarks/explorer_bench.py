"""Size and speed of the explorer page (reports/explorer.html, built by `dvc repro`) in
Debian's Chromium, headless: medians of several fresh tabs, never a pass/fail test.

  size          the page's bytes (target: about 5 MB or less)
  open          navigation start -> the tutorial's step drawn and its numbers shown
  maps          navigation start -> the rate maps drawn too (they are below the first screen)
  step          a slider key press -> the next step drawn (the surface, curves, numbers)
  setting       another optimizer picked -> its run, band, contours and rate maps drawn

Usage: python benchmarks/explorer_bench.py [--page reports/explorer.html] [--runs 5]
"""

import argparse
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_MB, TARGET_MS = 5.0, 1000.0
CHROMIUM = "/usr/bin/chromium"
READY = "document.body.dataset.ready"


def measure(browser: object, page: Path) -> dict[str, float]:
    """One fresh tab: the three times, in ms."""
    tab = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    tab.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file:") else r.abort())
    tab.goto(page.resolve().as_uri())
    tab.wait_for_function("document.body.dataset.maps")
    marks = tab.evaluate(
        "Object.fromEntries(performance.getEntriesByType('mark').map(m => [m.name, m.startTime]))"
    )
    opened, maps = marks["shown"], marks["maps"]  # since navigation started
    tab.focus("#step")
    start = tab.evaluate("performance.now()")
    tab.keyboard.press("ArrowRight")
    tab.wait_for_function(f"{READY}.endsWith(':1')")
    step = tab.evaluate("performance.now()") - start
    before = tab.evaluate(READY)
    start = tab.evaluate("performance.now()")
    tab.select_option("#optimizer", "momentum")
    tab.wait_for_function(f"{READY} !== {before!r}")
    setting = tab.evaluate("performance.now()") - start
    tab.close()
    return {"open": opened, "maps": maps, "step": step, "setting": setting}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--page", type=Path, default=ROOT / "reports/explorer.html")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if not args.page.is_file():
        raise SystemExit(f"{args.page}: missing; `make repro` builds it")
    from playwright.sync_api import sync_playwright

    size = args.page.stat().st_size / 1e6
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        runs = [measure(browser, args.page) for _ in range(args.runs)]
        browser.close()
    print(f"explorer page: {size:.2f} MB (target <= {TARGET_MB:.0f} MB)")
    for name in ("open", "maps", "step", "setting"):
        times = sorted(r[name] for r in runs)
        median = statistics.median(times)
        spread = f"{times[0]:.0f}-{times[-1]:.0f}"
        target = f"target <= {TARGET_MS / 1000:.0f} s"
        print(f"  {name:8s} {median:6.0f} ms median of {len(times)} ({spread}; {target})")


if __name__ == "__main__":
    main()
