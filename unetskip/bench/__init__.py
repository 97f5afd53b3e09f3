"""`python -m unetskip bench`: training and inference speed, memory, size and FLOPs of the networks in the
experiment configs, with ratios against the baseline measured in the same run, plus Lightning's overhead,
the data loader's throughput, and real fits on the data with and without `data.cache`. See docs/speed.md.
"""
