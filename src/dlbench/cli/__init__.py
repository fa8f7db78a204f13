"""Command-line interface. Importing this package must not import torch (``dlbench --help`` stays fast)."""

from dlbench.cli._errors import main

__all__ = ["main"]
