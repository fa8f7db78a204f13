"""Whole studies as files: a title and an ordered list of sections, each a question answered by one step (a
sweep, a transfer comparison, a count table, a kernels figure or an equivariance check).

:mod:`.file` reads and checks a study file, :mod:`.builtin` holds the built-in studies (package data),
:mod:`.plan` turns a study into trials and steps before anything runs, :mod:`.steps` runs the steps that are
not sweeps and :mod:`.record` is what the cache keeps of a study run for `dlbench report --study`.
"""
