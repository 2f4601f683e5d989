"""The optional shared-demo password: where it is set, and a constant-time check.

Set `CATDOG_PASSWORD` (or `[auth] password` in .streamlit/secrets.toml, read by
the app) to put a password form before every page. Without it the app is open,
as before. This keeps casual visitors out of a shared demo; it is no substitute
for a reverse proxy with real accounts and HTTPS (docs/security.md).
"""

from __future__ import annotations

import hmac
import os

PASSWORD_ENV = "CATDOG_PASSWORD"


def configured_password(secrets: dict | None = None) -> str | None:
    """The password from the environment, else from the secrets' [auth] table; None when unset or empty.

    Args:
        secrets: the app's secrets as a mapping (`st.secrets`), or None.
    """
    value = os.environ.get(PASSWORD_ENV)
    if not value and secrets:
        auth = secrets.get("auth") if hasattr(secrets, "get") else None
        value = auth.get("password") if hasattr(auth, "get") else None
    return str(value) if value else None


def password_matches(given: str | None, expected: str) -> bool:
    """Compare in constant time (hmac.compare_digest), so the answer's timing leaks nothing."""
    if not isinstance(given, str):
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
