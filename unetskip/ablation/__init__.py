"""The ablation study: the 2x2 grid of long (encoder-decoder) and short (residual) skips over seeds.

`study` runs the grid (each run in its own process, resumable), `worker` is that process, `report`
turns a results folder into runs.csv and summary.md, `plots` draws the curves, and `examples` shows
predictions of two variants side by side. `python -m unetskip ablation --help` is the command.
"""
