"""Secrets by name: given ones win, missing ones are generated once (0600) and read back."""

import stat

import pytest

from quantbot_infra.secrets import SecretError, resolve


def test_generated_once_then_read_back(tmp_path):
    first = resolve(["app", "replicator"], {}, tmp_path / "s", True)
    assert set(first) == {"app", "replicator"}
    assert len(first["app"]) == 32 and first["app"].isalnum()
    assert first["app"] != first["replicator"]
    assert resolve(["app", "replicator"], {}, tmp_path / "s", True) == first
    assert stat.S_IMODE((tmp_path / "s" / "app").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "s").stat().st_mode) == 0o700


def test_given_secret_wins_and_writes_nothing(tmp_path):
    out = resolve(["app"], {"app": "from-vault"}, tmp_path, True)
    assert out == {"app": "from-vault"}
    assert not (tmp_path / "app").exists()


def test_missing_secret_refused_when_generation_is_off(tmp_path):
    with pytest.raises(SecretError, match="'app' is missing: add it to the environment's Vault"):
        resolve(["app"], {}, tmp_path, False)
    assert not (tmp_path / "app").exists()


@pytest.mark.parametrize("name", ["../etc/passwd", "a/b", "", ".hidden", 3])
def test_unusable_names_refused(tmp_path, name):
    with pytest.raises(SecretError, match="not usable"):
        resolve([name], {}, tmp_path, True)


def test_empty_file_is_an_error_not_an_empty_password(tmp_path):
    (tmp_path / "app").write_text("\n")
    with pytest.raises(SecretError, match="is empty"):
        resolve(["app"], {}, tmp_path, True)


def test_empty_given_secret_refused(tmp_path):
    with pytest.raises(SecretError, match="given but empty"):
        resolve(["app"], {"app": ""}, tmp_path, True)
