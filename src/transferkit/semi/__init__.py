"""Learning from unlabelled images: class-balanced self-training on a pretrained backbone's frozen features,
and a student backbone fine-tuned on its pseudo-labels."""

from transferkit.semi.self_training import balanced_pseudo_labels, self_train

SELF_TRAINING = "self-training"  # the strategies' and auto recipes' names
STUDENT = "self-training-student"
SEMI_STRATEGIES = (SELF_TRAINING, STUDENT)  # the strategies that read --unlabeled

__all__ = ["STUDENT", "SELF_TRAINING", "SEMI_STRATEGIES", "balanced_pseudo_labels", "self_train"]
