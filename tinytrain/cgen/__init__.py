"""C code generation: the one Emitter op units emit through (emitter.py), the kernel index
and variant choice (kernels.py), C text helpers (cformat.py), and the rendering of a
model's files (generate.py)."""
