"""LoRA editor: low-rank adapters on MLP projections trained on the target tokens only."""

from consolidation.editors.lora.config import LoraConfig
from consolidation.editors.lora.editor import LoraEditor

__all__ = ["LoraConfig", "LoraEditor"]
