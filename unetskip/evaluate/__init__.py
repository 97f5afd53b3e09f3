"""Evaluation beyond one number per class: `unetskip evaluate` (a checkpoint on a split, image by image,
optionally against a second checkpoint) and `unetskip score` (masks any tool wrote against true masks),
both writing the same summary, per-image table, confusion matrix and galleries (docs/evaluate.md)."""
