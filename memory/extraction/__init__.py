"""Preference extraction: finding what a user likes or avoids in what they say, explicitly or by implication.

`CueExtractor` is the default (no language model needed); `Extractor` is the contract other extractors meet.
"""

from memory.extraction.base import Extractor
from memory.extraction.cue_extractor import CueExtractor

__all__ = ["CueExtractor", "Extractor"]
