"""Losses shared by several methods.

``distillation_loss`` (Hinton et al., 2015) is the soft-target term of knowledge distillation
(``transferkit distill``) and of Learning without Forgetting (``continual`` LwF).
"""

from __future__ import annotations

from torch import Tensor
from torch.nn import functional as F


def distillation_loss(student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
    """``T² · KL(softmax(teacher/T) || softmax(student/T))``, averaged over the batch.

    The ``T²`` factor keeps the gradient's scale independent of ``T`` (Hinton et al., §2).
    """
    return F.kl_div(
        F.log_softmax(student / temperature, 1), F.softmax(teacher / temperature, 1), reduction="batchmean"
    ) * (temperature**2)
