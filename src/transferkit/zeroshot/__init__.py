"""Zero-shot recognition: attribute-based (ESZSL, DAP) on pretrained features; CLIP with local weights."""

from transferkit.zeroshot import dap, eszsl  # noqa: F401  (registration)
from transferkit.zeroshot.base import ZeroShotMethod, zeroshot_methods
from transferkit.zeroshot.clip import ClipZeroShot
from transferkit.zeroshot.table import AttributeTable, read_attribute_table

__all__ = ["AttributeTable", "ClipZeroShot", "ZeroShotMethod", "read_attribute_table", "zeroshot_methods"]
