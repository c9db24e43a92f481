"""FT-M editor: constrained fine-tuning of one MLP projection with the masked target loss."""

from consolidation.editors.ftm.config import FtmConfig
from consolidation.editors.ftm.editor import FtmEditor

__all__ = ["FtmConfig", "FtmEditor"]
