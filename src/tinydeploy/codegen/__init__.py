"""C code generation: ir.Graph + memory plan → a self-contained C project."""
