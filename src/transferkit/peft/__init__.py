"""Parameter-efficient fine-tuning: LoRA, bottleneck adapters, BitFit, visual prompts."""

from transferkit.peft import adapter, bitfit, lora, prompt  # noqa: F401  (registration)
from transferkit.peft.base import PeftMethod, apply_peft, create_peft, peft_methods, peft_parameter_count
from transferkit.peft.lora import merge_lora, unmerge_lora

__all__ = [
    "PeftMethod",
    "apply_peft",
    "create_peft",
    "merge_lora",
    "peft_methods",
    "peft_parameter_count",
    "unmerge_lora",
]
