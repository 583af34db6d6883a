"""How work runs: the kernels and threads that decide the bits (numerics), the machine,
signals as exceptions (interrupt), and the processes or Dask clusters work is spread on."""
