"""ROME (rank-one model editing), one concern per file: statistics, keys, values, the editor."""

from consolidation.editors.rome.config import RomeConfig
from consolidation.editors.rome.editor import RomeEdit, RomeEditor

__all__ = ["RomeConfig", "RomeEdit", "RomeEditor"]
