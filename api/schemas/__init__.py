"""Request and response bodies, one module per resource: `...Request`/`...Create`/`...Update` for what a
client sends, `...Public` for what it gets back, so no internal field leaks by accident."""

from api.schemas.common import ErrorPublic

__all__ = ["ErrorPublic"]
