"""dlbench: one command per classic small-vision-model study."""

__version__ = "0.1.0"
