"""Learning from unlabelled images: self-training (label propagation) on a pretrained backbone's frozen features,
a student backbone fine-tuned on its pseudo-labels, and FixMatch (the whole backbone, weak/strong views)."""

from transferkit.semi.self_training import balanced_pseudo_labels, self_train

SELF_TRAINING = "self-training"  # the strategies' and auto recipes' names
STUDENT = "self-training-student"
FIXMATCH = "fixmatch"
SEMI_STRATEGIES = (SELF_TRAINING, STUDENT, FIXMATCH)  # the strategies that read --unlabeled

__all__ = ["FIXMATCH", "STUDENT", "SELF_TRAINING", "SEMI_STRATEGIES", "balanced_pseudo_labels", "self_train"]
