"""Host execution of NNAPI models: reference kernels, interpreter and the virtual device."""
