"""gradlab: what losses, optimizers and gradient clipping do to a seeded linear model."""
