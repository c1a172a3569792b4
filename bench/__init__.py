"""Speed and tool-use benchmarks (measurements).

Filled in by later work; the layering test already fences it.
"""
