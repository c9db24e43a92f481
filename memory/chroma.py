"""Opening chromadb: an embedded store on disk or a remote server, with telemetry off and our embedder.

Why a module of its own: two rules must hold for every chromadb handle in imprint, and they are easy to
forget at a call site. (1) Telemetry is off: set both in `Settings` and in the environment, because some
chromadb components read the variable rather than the settings object. (2) chromadb never falls back to its
default embedding function, which downloads a model at run time (design invariant 6): every collection is
opened through `open_collection` with our `ChromaEmbeddingFunction`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from memory.embedder import ChromaEmbeddingFunction, Embedder
from memory.errors import InvalidInput

if TYPE_CHECKING:
    import chromadb
    from chromadb.api.models.Collection import Collection

log = logging.getLogger(__name__)

os.environ["ANONYMIZED_TELEMETRY"] = "False"  # before chromadb is imported anywhere through this module

COSINE = {
    "hnsw": {"space": "cosine"}
}  # chromadb 1.5.9 accepts this and the legacy {"hnsw:space": ...} metadata


def _settings() -> chromadb.config.Settings:
    from chromadb.config import Settings

    return Settings(anonymized_telemetry=False)


def parse_url(url: str) -> tuple[str, int, bool]:
    """Split "host:port", "http://host:port" or "https://host:port" into (host, port, ssl)."""
    text = url.strip()
    parts = urlsplit(text if "://" in text else f"http://{text}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"chroma url {url!r} is not 'host:port' or 'http(s)://host:port'")
    try:
        port = parts.port
    except ValueError as err:
        raise InvalidInput(f"chroma url {url!r} has a bad port: {err}") from err
    ssl = parts.scheme == "https"
    return parts.hostname, port or (443 if ssl else 8000), ssl


def make_client(path: Path | None = None, url: str | None = None) -> chromadb.ClientAPI:
    """An embedded `PersistentClient` at `path`, or an `HttpClient` for `url`; exactly one must be given."""
    import chromadb

    os.environ["ANONYMIZED_TELEMETRY"] = "False"
    if (path is None) == (url is None):
        raise InvalidInput("make_client needs exactly one of path (embedded store) or url (chroma server)")
    if path is not None:
        Path(path).mkdir(parents=True, exist_ok=True)
        log.info("opening embedded chroma at %s", path)
        return chromadb.PersistentClient(path=str(path), settings=_settings())
    host, port, ssl = parse_url(url or "")
    log.info("connecting to chroma server %s:%d (ssl=%s)", host, port, ssl)
    return chromadb.HttpClient(host=host, port=port, ssl=ssl, settings=_settings())


def open_collection(client: chromadb.ClientAPI, embedder: Embedder, name: str) -> Collection:
    """Get or create a cosine-space collection that embeds with `embedder`, never chromadb's default."""
    return client.get_or_create_collection(
        name,
        embedding_function=ChromaEmbeddingFunction(embedder),  # type: ignore[arg-type]
        configuration=COSINE,  # type: ignore[arg-type]
    )
