"""Classification heads. Each file registers one head."""

from transferkit.heads import linear, mlp, svm, views  # noqa: F401  (registration)
from transferkit.heads.base import Head, create_head, heads

__all__ = ["Head", "create_head", "heads"]
