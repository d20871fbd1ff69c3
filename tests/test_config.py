"""triage.toml: precedence, validation, secrets, and the CLI's exit code 2."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from triage import config
from triage.errors import ConfigError

GOOD = """
[mailbox]
source = "imap"
host = "imap.example.com"
username = "support@example.com"
password_env = "TEST_IMAP_PW"

[store]
path = "data/triage.db"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "triage.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_good_config_resolves_paths_relative_to_the_file(tmp_path: Path) -> None:
    s = config.load(write(tmp_path, GOOD))
    assert s.mailbox.port == 993 and s.mailbox.security == "tls"
    assert s.store_path == (tmp_path / "data" / "triage.db").resolve()
    assert s.rules_dir.name == "rules" and s.rules_dir.exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD + "\n[mailbox2]\n", "key 'mailbox2': unknown section; did you mean '[mailbox]'?"),
        (GOOD.replace("password_env", "pasword_env"), "key 'mailbox.pasword_env': unknown key; did you mean 'password_env'?"),
        (GOOD.replace('password_env = "TEST_IMAP_PW"', 'password = "hunter2"'), "use password_env"),
        (GOOD.replace('source = "imap"', 'source = "pop3"'), "key 'mailbox.source': expected one of imap, maildir, mbox"),
        (GOOD + "\n[poll]\nrate_limit = \"ten\"\n", "key 'poll.rate_limit': expected an integer"),
        (GOOD.replace('host = "imap.example.com"', 'host = "imap.example.com"\nsecurity = "none"').replace("[mailbox]", "[mailbox]"), None),
        (GOOD.replace('host = "imap.example.com"', 'host = "imap.example.com"\nport = "993"'), "key 'mailbox.port': expected an integer"),
        (GOOD.replace('username = "support@example.com"\n', ""), "key 'mailbox.username': required"),
        ("[mailbox\n", "not valid TOML"),
    ],
)
def test_config_errors_name_file_and_key(tmp_path: Path, text: str, expected: str | None) -> None:
    path = write(tmp_path, text)
    if expected is None:
        config.load(path)  # security = "none" stated explicitly is allowed
        return
    with pytest.raises(ConfigError) as err:
        config.load(path)
    assert str(path.resolve()) in str(err.value) or str(path) in str(err.value)
    assert expected in str(err.value)


def test_every_problem_is_reported_together(tmp_path: Path) -> None:
    text = GOOD.replace("password_env", "pasword_env") + "\n[poll]\nrate_limit = 0\n"
    with pytest.raises(ConfigError) as err:
        config.load(write(tmp_path, text))
    assert len(str(err.value).splitlines()) == 2


def test_plaintext_to_a_remote_host_must_be_explicit(tmp_path: Path) -> None:
    s = config.from_dict(
        {"mailbox": {"source": "imap", "host": "127.0.0.1", "username": "u", "security": "none"}},
        tmp_path / "t.toml",
    )
    assert s.mailbox.security == "none" and s.mailbox.port == 143


def test_secret_from_env_and_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = config.load(write(tmp_path, GOOD))
    monkeypatch.setenv("TEST_IMAP_PW", "s3cret")
    assert s.mailbox.credentials.secret() == "s3cret"
    monkeypatch.delenv("TEST_IMAP_PW")
    with pytest.raises(ConfigError, match="TEST_IMAP_PW is not set"):
        s.mailbox.credentials.secret()
    s2 = config.load(write(tmp_path, GOOD.replace('password_env = "TEST_IMAP_PW"', 'password_cmd = "echo from-cmd"')))
    assert s2.mailbox.credentials.secret() == "from-cmd"
    s3 = config.load(write(tmp_path, GOOD.replace('password_env = "TEST_IMAP_PW"', 'password_cmd = "false"')))
    with pytest.raises(ConfigError, match="password_cmd: the command exited 1"):
        s3.mailbox.credentials.secret()


def test_token_cmd_is_checked_when_the_file_is_loaded_and_gets_the_section_timeout(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        config.from_dict(
            {"mailbox": {"source": "imap", "host": "h", "username": "u", "token_cmd": "oama access 'unclosed"},
             "smtp": {"host": "h", "token_cmd": "oama access u"}},
            tmp_path / "t.toml",
        )
    assert str(err.value).splitlines() == [
        f"{tmp_path / 't.toml'}: key 'mailbox.token_cmd': cannot parse the command: No closing quotation",
        f"{tmp_path / 't.toml'}: key 'smtp.username': required with token_cmd: the mailbox the token is for",
    ]
    s = config.from_dict(
        {"mailbox": {"source": "imap", "host": "h", "username": "u", "token_cmd": "oama access u", "timeout": 7}},
        tmp_path / "t.toml",
    )
    creds = s.mailbox.credentials
    assert (creds.oauth2, creds.section, creds.timeout) == (True, "mailbox", 7.0)
    assert s.smtp.credentials.timeout == 30.0


def test_find_config_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRIAGE_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="no configuration found"):
        config.find_config(None)
    (tmp_path / "triage.toml").write_text("")
    assert config.find_config(None) == Path("triage.toml")
    monkeypatch.setenv("TRIAGE_CONFIG", "/elsewhere/t.toml")
    assert config.find_config(None) == Path("/elsewhere/t.toml")
    assert config.find_config("/explicit.toml") == Path("/explicit.toml")
    assert os.environ["TRIAGE_CONFIG"] == "/elsewhere/t.toml"
