"""API keys and the tenant a request acts for."""

from api.auth.keys import ApiKey, KeyStore
from api.auth.principal import Principal

__all__ = ["ApiKey", "KeyStore", "Principal"]
