"""unetskip: a from-scratch residual U-Net in PyTorch Lightning that measures what skip connections buy."""

__version__ = "0.1.0"
