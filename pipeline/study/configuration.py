"""A study's configuration, (scenario, loss, optimizer, clip): the columns that name one in
every table, and its one name.

Light on purpose (no torch): the analysis stage reads tables, it trains nothing.
"""

CONFIG = ("scenario", "loss", "optimizer", "clip")  # a configuration's columns


def config_name(scenario: str, loss: str, optimizer: str, clip: str) -> str:
    """A configuration's one name: its MLflow run name and its key in summary.csv."""
    return f"{scenario}-{loss}-{optimizer}-{clip}"
