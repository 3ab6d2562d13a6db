"""Typed NNAPI IR: codes, operand types, ops, programs, builder, printer and verifier."""
