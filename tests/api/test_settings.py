"""Settings: defaults, environment variables, a TOML file, and refusals of bad values."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from api.settings import BUNDLED_MODEL, Settings


def test_defaults_use_the_bundled_model_and_the_shared_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IMPRINT_CONFIG", raising=False)
    s = Settings()
    assert s.model == BUNDLED_MODEL
    assert s.chroma == ""
    assert s.data_dir is None or (s.data_dir / "prefeval").is_dir()


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("IMPRINT_CONFIG", raising=False)
    monkeypatch.setenv("IMPRINT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("IMPRINT_MODEL", "Qwen/Qwen2.5-0.5B-Instruct")
    monkeypatch.setenv("IMPRINT_CHROMA", "127.0.0.1:8001")
    monkeypatch.setenv("IMPRINT_MAX_NEW_TOKENS", "12")
    s = Settings()
    assert s.state_dir == tmp_path / "state"
    assert s.threads_path == tmp_path / "state" / "threads.sqlite"
    assert s.model == "Qwen/Qwen2.5-0.5B-Instruct"
    assert s.chroma == "127.0.0.1:8001"
    assert s.max_new_tokens == 12


def test_toml_file_is_read_and_environment_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "imprint.toml"
    cfg.write_text('dtype = "bfloat16"\nrecall_k = 3\nmax_new_tokens = 50\n')
    monkeypatch.setenv("IMPRINT_MAX_NEW_TOKENS", "7")
    s = Settings.load(config_file=cfg)
    assert s.dtype == "bfloat16"
    assert s.recall_k == 3
    assert s.max_new_tokens == 7


def test_missing_config_file_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IMPRINT_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(FileNotFoundError, match=r"nope\.toml"):
        Settings()


@pytest.mark.parametrize(("field", "value"), [("dtype", "int3"), ("max_new_tokens", "0"), ("recall_k", "-1")])
def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch, field: str, value: str) -> None:
    monkeypatch.delenv("IMPRINT_CONFIG", raising=False)
    monkeypatch.setenv(f"IMPRINT_{field.upper()}", value)
    with pytest.raises(ValidationError, match=field):
        Settings()


def test_unknown_fields_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "imprint.toml"
    cfg.write_text('modle = "typo"\n')
    with pytest.raises(ValidationError, match="modle"):
        Settings.load(config_file=cfg)
