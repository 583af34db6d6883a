"""The batched engines: any set of cells as one tensor program, bit-identical to
torch.optim (regression: nn.Linear(1, 1); classification: nn.Linear(2, 2))."""
