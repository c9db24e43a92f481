"""One exception type for the memory domain, so callers can map it to a clear 4xx."""


class MemoryError_(Exception):
    """Base class of every error raised by the memory package."""


class InvalidInput(MemoryError_, ValueError):
    """A caller passed something malformed (bad id, empty text, oversized text). Nothing was written."""


class NotFound(MemoryError_, KeyError):
    """A record or user that does not exist (or belongs to someone else, which looks the same)."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want the plain message
        return str(self.args[0]) if self.args else "not found"
