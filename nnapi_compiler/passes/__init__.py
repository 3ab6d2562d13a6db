"""IR passes and the pass manager that runs them as one ordered pipeline."""
