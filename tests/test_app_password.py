"""The optional password gate (AppTest): off by default, a form before every page when CATDOG_PASSWORD is set."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from catdog.auth import configured_password, password_matches
from tests.fixtures import REPO

TIMEOUT = 60


def open_app() -> AppTest:
    return AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT).run()


def test_without_a_password_the_app_opens_as_before(home, monkeypatch):
    monkeypatch.delenv("CATDOG_PASSWORD", raising=False)
    at = open_app()
    assert not at.exception and "catdog studio" in at.title[0].value
    assert not [t for t in at.text_input if t.key == "catdog_password"]


def test_with_a_password_every_page_waits_behind_the_form(home, monkeypatch):
    monkeypatch.setenv("CATDOG_PASSWORD", "s3cret-demo")
    at = open_app()
    assert not at.exception
    assert at.text_input(key="catdog_password") is not None
    assert not at.subheader  # Home's "Where to next" is not drawn
    at.text_input(key="catdog_password").input("wrong")
    at.button[0].click().run()  # a form's values are sent with its submit button
    assert any("Wrong password" in e.value for e in at.error)
    at.text_input(key="catdog_password").input("s3cret-demo")
    at.button[0].click().run()
    assert not at.exception
    assert any("Where to next" in s.value for s in at.subheader)
    at.switch_page("pages/runs.py").run()
    assert not at.exception and at.title[0].value == "Runs"


def test_password_comes_from_the_environment_or_the_secrets_auth_table(monkeypatch):
    monkeypatch.delenv("CATDOG_PASSWORD", raising=False)
    assert configured_password(None) is None and configured_password({"auth": {"password": ""}}) is None
    assert configured_password({"auth": {"password": "pw"}}) == "pw"
    monkeypatch.setenv("CATDOG_PASSWORD", "env")
    assert configured_password({"auth": {"password": "pw"}}) == "env"
    assert password_matches("env", "env") and not password_matches("Env", "env") and not password_matches(None, "env")


def test_the_comparison_is_constant_time(monkeypatch):
    """The answer is compared by hmac.compare_digest (whose time does not depend on where the bytes differ), never by ==."""
    from catdog import auth

    compared = []
    real = auth.hmac.compare_digest
    monkeypatch.setattr(auth.hmac, "compare_digest", lambda a, b: compared.append((a, b)) or real(a, b))
    assert auth.password_matches("pässword", "pässword") and not auth.password_matches("password", "pässword")
    assert compared == [("pässword".encode(), "pässword".encode()), (b"password", "pässword".encode())]
