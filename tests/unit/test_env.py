import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, env_str

NAME = "LEDGERFS_TEST_VARIABLE"


@pytest.fixture(autouse=True)
def _unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(NAME, raising=False)


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_unset_or_blank_takes_the_default(monkeypatch: pytest.MonkeyPatch, raw: str | None) -> None:
    if raw is not None:
        monkeypatch.setenv(NAME, raw)
    assert env_str(NAME, "fallback") == "fallback"
    assert env_bool(NAME, default=True) is True
    assert env_int(NAME, 7) == 7
    assert env_list(NAME, ["a"]) == ["a"]


def test_str_is_stripped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NAME, "  value ")
    assert env_str(NAME) == "value"


def test_str_outside_choices_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NAME, "staging")
    with pytest.raises(ImproperlyConfigured, match=f"{NAME} must be one of embedded, production"):
        env_str(NAME, choices=("production", "embedded"))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True),
        ("TRUE", True),
        ("yes", True),
        ("on", True),
        ("0", False),
        ("False", False),
        ("no", False),
        ("off", False),
    ],
)
def test_bool_words(monkeypatch: pytest.MonkeyPatch, raw: str, expected: bool) -> None:
    monkeypatch.setenv(NAME, raw)
    assert env_bool(NAME, default=not expected) is expected


def test_bool_rejects_other_words(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NAME, "maybe")
    with pytest.raises(ImproperlyConfigured, match=f"{NAME} must be a boolean.*'maybe'"):
        env_bool(NAME, default=False)


def test_int_parses_and_checks_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NAME, "42")
    assert env_int(NAME, 0, min_value=1, max_value=100) == 42
    with pytest.raises(ImproperlyConfigured, match=f"{NAME} must be at least 50; got 42"):
        env_int(NAME, 0, min_value=50)
    with pytest.raises(ImproperlyConfigured, match=f"{NAME} must be at most 10; got 42"):
        env_int(NAME, 0, max_value=10)


@pytest.mark.parametrize("raw", ["4.2", "forty", "0x10"])
def test_int_rejects_non_integers(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv(NAME, raw)
    with pytest.raises(ImproperlyConfigured, match=f"{NAME} must be an integer"):
        env_int(NAME, 0)


def test_list_splits_on_commas_and_drops_empty_items(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NAME, " a.example , b.example,, ")
    assert env_list(NAME) == ["a.example", "b.example"]
