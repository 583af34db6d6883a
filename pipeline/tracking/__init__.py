"""MLflow: the only package that talks to it. Runs are built from the pipeline's outputs
and published once per content key."""
