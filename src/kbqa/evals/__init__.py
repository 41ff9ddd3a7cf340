"""Evaluation on public benchmarks (comes next)."""
