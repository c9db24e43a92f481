"""The drift guard: fixed probes (BoolQ, NaturalQuestions, perplexity, locality, retention, norm growth) that
every candidate weight memory must pass before it is committed."""

from consolidation.drift.config import ALL_PROBES, DriftConfig
from consolidation.drift.gate import DriftGate, retention_items
from consolidation.drift.guard import DriftGuard
from consolidation.drift.report import Check, DriftReport

__all__ = ["ALL_PROBES", "Check", "DriftConfig", "DriftGate", "DriftGuard", "DriftReport", "retention_items"]
