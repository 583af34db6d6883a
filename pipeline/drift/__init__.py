"""The nightly drift check: this run's tables against the baseline committed in git."""
