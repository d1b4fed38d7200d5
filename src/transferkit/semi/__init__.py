"""Learning from unlabelled images: class-balanced self-training on a pretrained backbone's frozen features."""

from transferkit.semi.self_training import balanced_pseudo_labels, self_train

__all__ = ["balanced_pseudo_labels", "self_train"]
