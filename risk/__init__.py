"""Pure risk layer: the vocabulary (``risk.model``) and all the math. No I/O, numpy/scipy only."""
