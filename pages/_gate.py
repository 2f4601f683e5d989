"""The sign-in gate of a password-protected studio (catdog.auth), checked by the entry point AND by every page.

Every page's `main()` passes `require_sign_in()` (through `use_app_navigation()`)
before it draws or does anything, however Streamlit reached it: through the app's
navigation, or a page file run on its own (Streamlit's pages/ mode right after a
server start). A signed-in browser
keeps an HMAC token in a session cookie (read back with `st.context.cookies`), so
a reload or a new tab stays signed in; the password itself is never stored.
"""

from __future__ import annotations

import streamlit as st

from catdog import auth

AUTH_KEY = "catdog_authenticated"  # session_state: this session's sign-in token (auth.make_token)
ATTEMPTS_KEY = "catdog_attempts"  # session_state: auth.Attempts, this session's wrong answers
PASSWORD_KEY = "catdog_password"


def _secrets_paths() -> list[str]:
    return list(st.get_option("secrets.files") or [])


def expected_password() -> tuple[str | None, str | None]:
    """(the configured password or None, why the configuration cannot be read or None)."""
    try:
        table = st.secrets.to_dict() if hasattr(st.secrets, "to_dict") else dict(st.secrets)
    except Exception:  # noqa: BLE001 - Streamlit raises its own error for both "no file" and "bad file"
        table = None
    password = auth.configured_password(table)
    if password is None and table is None:
        problem = auth.unreadable_secrets(_secrets_paths())
        if problem:  # it may hold the password: stay locked rather than open
            return None, problem
    return password, None


def _client() -> str:
    try:
        return st.context.ip_address or "?"
    except Exception:  # noqa: BLE001 - only for the log line
        return "?"


def signed_in() -> bool:
    """True when no password is set, or this session signed in (now, or earlier in this browser)."""
    expected, problem = expected_password()
    if problem:
        return False
    if expected is None or auth.token_valid(st.session_state.get(AUTH_KEY), expected):
        return True  # a token, not a flag: it expires, and a changed password signs the session out
    cookie = st.context.cookies.get(auth.COOKIE_NAME)
    if auth.token_valid(cookie, expected):  # signed in earlier in this browser (a reload, another tab)
        st.session_state[AUTH_KEY] = cookie
        return True
    return False


def gate_ui() -> bool:
    """Draw the password form unless the session may see the app; True when it may."""
    if signed_in():
        return True
    st.title(":material/lock: catdog studio")
    expected, problem = expected_password()
    if problem:
        # The visitor learns what to ask for; the file's path and error go to the server's log only.
        auth.log_unreadable(problem)
        st.error("The studio is locked: its password file (`secrets.toml`) cannot be read, so no one can sign in. "
                 f"Whoever runs the studio must fix the file (the server log says what is wrong) or set "
                 f"`{auth.PASSWORD_ENV}`, then reload this page.", icon=":material/lock:")
        return False
    with st.form("catdog_login", clear_on_submit=True):  # the typed text never stays on screen
        given = st.text_input("Password", type="password", key=PASSWORD_KEY)
        submitted = st.form_submit_button("Enter", type="primary")
    if submitted:
        attempts = st.session_state.setdefault(ATTEMPTS_KEY, auth.Attempts())
        before = attempts.failures
        ok, wait = auth.check_password(given, expected, attempts, client=_client())
        if ok:
            st.session_state[AUTH_KEY] = auth.make_token(expected)
            st.rerun()  # the same page, now signed in
        pause = f"try again in {max(1, round(wait))} s" if wait > 0 else ""
        if attempts.failures == before:  # not even checked: this session, or the whole server, must wait
            st.error(f"Too many attempts: {pause}.", icon=":material/hourglass_top:")
        else:
            st.error(f"Wrong password{'; ' + pause if pause else ''}.", icon=":material/lock:")
    st.caption("This demo is shared with a password. Ask the person who sent you the link.")
    return False


def require_sign_in() -> None:
    """Stop the page here (with the form drawn) unless the session is signed in."""
    if not gate_ui():
        st.stop()


def remember_ui() -> None:
    """Keep a signed-in browser signed in: put the token in a session cookie, once per session."""
    token = st.session_state.get(AUTH_KEY)
    if not token or st.context.cookies.get(auth.COOKIE_NAME) == token:
        return
    # A session cookie (no Max-Age): gone when the browser closes; the token itself expires after TOKEN_TTL_S.
    st.sidebar.html(f'<script>document.cookie = "{auth.COOKIE_NAME}={token}; path=/; SameSite=Strict";</script>',
                    unsafe_allow_javascript=True)
