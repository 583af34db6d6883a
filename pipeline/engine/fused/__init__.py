"""The fused engine: a block of cells of one loss, update rule and clipping mode trains
with the whole step loop inside one compiled kernel (numba), each cell's state in L1.

Each loss, optimizer and clipping module holds its rule's fused form beside its exact one
(plain Python in numba's subset, using `primitives`); this package compiles and composes
them (`compile`), groups cells into blocks (`blocks`) and runs the kernels (`regression`,
`classification`). Importing this package costs nothing: numba loads with `compile`.
"""
