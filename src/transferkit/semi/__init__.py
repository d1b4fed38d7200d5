"""Learning from unlabelled images: class-balanced self-training on a pretrained backbone's frozen features."""

from transferkit.semi.self_training import balanced_pseudo_labels, self_train

SELF_TRAINING = "self-training"  # the strategy's and auto recipe's name

__all__ = ["SELF_TRAINING", "balanced_pseudo_labels", "self_train"]
