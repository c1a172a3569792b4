"""The application layer: one service per command, composing probe, install and bench.

Services take a typed options object and a ``Feedback`` (progress and notes, rendered by
the CLI), and return typed results; they never print and never import click or rich.
"""
