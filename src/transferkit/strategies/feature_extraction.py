"""Feature extraction: the pretrained backbone stays frozen; only a new head learns.

Best with little data and a target close to ImageNet. The frozen backbone's features are
computed once and cached, so every epoch after the first costs only the head.
"""

from __future__ import annotations

from transferkit.strategies.base import Stage, Strategy, strategies


@strategies.register("feature-extraction")
class FeatureExtraction(Strategy):
    name = "feature-extraction"

    def stages(self, epochs: int, num_groups: int) -> list[Stage]:
        return [Stage(0, epochs, trainable=0)]

    def explain(self) -> str:
        return "backbone frozen, new head trained on cached features (few images, domain close to ImageNet)"
