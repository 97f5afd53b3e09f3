"""Predict: images of any size to class probabilities (`Inferer`: whole, tiled, flip TTA), predict's
options, the mask writer and what it draws."""

from unetskip.predict.inferer import Inferer
from unetskip.predict.writer import MaskWriter

__all__ = ["Inferer", "MaskWriter"]
