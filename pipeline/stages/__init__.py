"""The entry points: one module per DVC stage (and `drift`, the nightly check).

Each is a thin `main(argv)` that reads params and paths, calls the library (the modules
of `pipeline/`) and writes outputs. Stages never import stages; `python -m pipeline
STAGE` runs one.
"""
