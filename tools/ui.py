"""`make ui PORT=5000`: print the links to what publish published (reports/published.json),
for this port, then start the MLflow UI on the local store, bound to 127.0.0.1.

With MLFLOW_TRACKING_URI naming a tracking server, that server is the UI: the links are
printed and nothing is started.

Usage: python tools/ui.py [--port 5000] [--receipt reports/published.json]
"""

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.tracking import location, receipt  # after the path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--receipt", type=Path, default=ROOT / "reports/published.json")
    args = parser.parse_args()
    uri = location.default_uri(ROOT)
    try:
        shown = receipt.views(json.loads(args.receipt.read_text(encoding="utf-8")), uri)
    except (OSError, ValueError, KeyError, TypeError):
        shown = []
    if shown:
        print("\n".join(location.ui_hint(uri, shown, args.port)[1:]), flush=True)
    else:
        print(f"nothing published to {uri} yet: `make repro` publishes", flush=True)
    if uri.startswith(("http://", "https://")):
        return
    location.say_if_empty(ROOT)  # a deleted mlflow.db: make publish fills it
    command = ["mlflow", "ui", "--backend-store-uri", uri, "--host", "127.0.0.1"]
    os.execvp("mlflow", [*command, "--port", str(args.port)])


if __name__ == "__main__":
    main()
