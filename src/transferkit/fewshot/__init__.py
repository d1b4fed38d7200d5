"""Few-shot classification on pretrained features: ProtoNet, Matching, Relation, SimpleShot,
fine-tune baseline, first-order MAML and Reptile; episodic evaluation with 95% CIs."""

from transferkit.fewshot import fine_tune, maml, matching, protonet, relation, reptile, simpleshot  # noqa: F401
from transferkit.fewshot.base import FewShotMethod, fewshot_methods
from transferkit.fewshot.episodes import Episode, EpisodeSampler, confidence_interval
from transferkit.fewshot.evaluate import FewShotResult, evaluate_episodes, run_fewshot, split_classes

__all__ = [
    "Episode",
    "EpisodeSampler",
    "FewShotMethod",
    "FewShotResult",
    "confidence_interval",
    "evaluate_episodes",
    "fewshot_methods",
    "run_fewshot",
    "split_classes",
]
