"""`kbqa tune`: training data in the answerer's prompt format, and fine-tuning the generator."""

from kbqa.tune.data import build_training_data
from kbqa.tune.train import train

__all__ = ["build_training_data", "train"]
