"""Unsupervised domain adaptation: DAN (MK-MMD), Deep CORAL, DANN, CDAN(+E), ADDA; domain-shift measures."""

from transferkit.adaptation import adda, cdan, coral, dan, dann, source_only  # noqa: F401  (registration)
from transferkit.adaptation.base import AdaptationMethod, adaptation_methods
from transferkit.adaptation.grl import grl_coefficient, reverse_gradient
from transferkit.adaptation.measures import domain_shift
from transferkit.adaptation.trainer import AdaptConfig, AdaptResult, adapt

__all__ = [
    "AdaptConfig",
    "AdaptResult",
    "AdaptationMethod",
    "adapt",
    "adaptation_methods",
    "domain_shift",
    "grl_coefficient",
    "reverse_gradient",
]
