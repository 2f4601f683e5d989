"""The optional shared-demo password: where it is set, how guesses are limited, and sign-in tokens.

Set `CATDOG_PASSWORD` (or `[auth] password` in .streamlit/secrets.toml, read by
the app) to put a password form before every page. Without it the app is open,
as before. This keeps casual visitors out of a shared demo; it is no substitute
for a reverse proxy with real accounts and HTTPS (docs/security.md).

Guessing is slowed twice: each browser session waits longer after every few
wrong answers (`session_delay_s`), and one process-wide token bucket
(`GUESSES`) caps the rate of all attempts together, so new sessions gain nothing.
A signed-in browser keeps a token (`make_token`): an HMAC over an expiry time,
keyed by a secret that lives only in this process and by the password, so it
never contains the password and dies with a restart or a password change.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets as _secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import tomllib

PASSWORD_ENV = "CATDOG_PASSWORD"
COOKIE_NAME = "catdog_session"
TOKEN_TTL_S = 12 * 3600  # a sign-in lasts for the browser session, at most this long
FREE_GUESSES = 3  # wrong answers per session before the waits start
MAX_SESSION_DELAY_S = 60.0
BUCKET_BURST = 10  # attempts the whole server accepts at once ...
BUCKET_PER_MINUTE = 12.0  # ... and then per minute, from every session together

_LOG = logging.getLogger(__name__)
_PROCESS_KEY = _secrets.token_bytes(32)  # never written anywhere: a restart signs everyone out


class SecretsUnreadable(ValueError):
    """A secrets file exists but cannot be parsed: a password may be in it, so the app must stay locked."""


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


def unreadable_secrets(paths: list[str] | tuple[str, ...]) -> str | None:
    """Why the secrets cannot be read (which file, which line), or None when no secrets file exists.

    Called after Streamlit failed to load its secrets: an existing file that fails
    to parse may hold the password, so the caller keeps the app locked.

    Args:
        paths: the secrets locations (Streamlit's `secrets.files` option).
    """
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            return f"the secrets folder {path} cannot be read"
        if not path.exists():
            continue
        try:
            tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            return f"{path} cannot be read ({exc})"
    return None


def log_unreadable(problem: str) -> None:
    """Log an unreadable secrets file (once per distinct problem, not once per page run)."""
    if problem not in _LOGGED:
        _LOGGED.add(problem)
        _LOG.error("catdog: the studio stays locked: %s", problem)


_LOGGED: set[str] = set()


def password_matches(given: str | None, expected: str) -> bool:
    """Compare in constant time (hmac.compare_digest), so the answer's timing leaks nothing."""
    if not isinstance(given, str):
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def session_delay_s(failures: int) -> float:
    """How long one session waits after its `failures`-th wrong answer: 0, then 2, 4, 8 … up to a minute."""
    if failures < FREE_GUESSES:
        return 0.0
    return min(MAX_SESSION_DELAY_S, 2.0 ** (failures - FREE_GUESSES + 1))


class GuessLimiter:
    """A token bucket over every sign-in attempt in this process (thread-safe)."""

    def __init__(self, burst: int = BUCKET_BURST, per_minute: float = BUCKET_PER_MINUTE, clock=time.monotonic):
        if burst < 1 or per_minute <= 0:
            raise ValueError(f"burst and per_minute must be positive, got burst={burst!r}, per_minute={per_minute!r}")
        self.burst, self.rate, self._clock = burst, per_minute / 60.0, clock
        self._tokens, self._at = float(burst), clock()
        self._lock = threading.Lock()
        self.failures = 0

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def take(self) -> float:
        """Spend one attempt: 0.0 when allowed, else the seconds until the next one is."""
        with self._lock:
            self._refill()
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self.rate

    def reset(self) -> None:
        """A full bucket (tests, and a server operator's fresh start)."""
        with self._lock:
            self._tokens, self._at, self.failures = float(self.burst), self._clock(), 0


GUESSES = GuessLimiter()


@dataclass
class Attempts:
    """One browser session's wrong answers, and when it may try again (on `clock`, time.monotonic by default)."""

    failures: int = 0
    blocked_until: float = 0.0
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)  # tests inject their own


def check_password(given: str | None, expected: str, attempts: Attempts, client: str = "?",
                   limiter: GuessLimiter | None = None) -> tuple[bool, float]:
    """One sign-in attempt, slowed per session and process-wide; logs a wrong answer (never its text).

    Args:
        given: what was typed.
        expected: the configured password.
        attempts: this session's record, updated in place.
        client: who asked (an IP address), for the log line.
        limiter: the process-wide bucket (default `GUESSES`).

    Returns:
        (signed in, seconds to wait before the next attempt; > 0 means this one was not even checked).
    """
    limiter = limiter or GUESSES
    now = attempts.clock()
    if now < attempts.blocked_until:
        return False, attempts.blocked_until - now
    wait = limiter.take()  # before comparing: a full bucket must not say whether a guess was right
    if wait > 0:
        _LOG.warning("catdog: sign-in refused from %s: too many attempts on this server, next in %.0f s", client, wait)
        return False, wait
    if password_matches(given, expected):
        attempts.failures, attempts.blocked_until = 0, 0.0
        return True, 0.0
    attempts.failures += 1
    with limiter._lock:
        limiter.failures += 1
        total = limiter.failures
    delay = session_delay_s(attempts.failures)
    attempts.blocked_until = now + delay
    _LOG.warning("catdog: wrong password from %s (%d in this session, %d on this server since start)",
                 client, attempts.failures, total)
    return False, delay


def _token_key(password: str) -> bytes:
    return hmac.new(_PROCESS_KEY, password.encode("utf-8"), hashlib.sha256).digest()


def make_token(password: str, now: float | None = None, ttl_s: float = TOKEN_TTL_S) -> str:
    """A sign-in token 'EXPIRY.NONCE.SIGNATURE': proof of a past sign-in, never the password itself."""
    expiry = int((time.time() if now is None else now) + ttl_s)
    payload = f"{expiry}.{_secrets.token_urlsafe(12)}"
    signature = hmac.new(_token_key(password), payload.encode("ascii"), hashlib.sha256).digest()
    return f"{payload}.{base64.urlsafe_b64encode(signature).decode('ascii').rstrip('=')}"


def token_valid(token: str | None, password: str, now: float | None = None) -> bool:
    """True for an unexpired token made by this process for this password."""
    if not isinstance(token, str) or token.count(".") != 2 or len(token) > 200:
        return False
    expiry, nonce, signature = token.split(".")
    if not expiry.isdigit() or int(expiry) < (time.time() if now is None else now):
        return False
    expected = hmac.new(_token_key(password), f"{expiry}.{nonce}".encode("ascii", "replace"), hashlib.sha256).digest()
    return hmac.compare_digest(signature.encode("ascii", "replace"),
                               base64.urlsafe_b64encode(expected).decode("ascii").rstrip("=").encode("ascii"))


LOOPBACK_ADDRESSES = ("127.0.0.1", "::1", "localhost")  # this machine only; anything else is sharing
DEFAULT_CONFIG_FILES = ("~/.streamlit/config.toml", ".streamlit/config.toml")  # Streamlit's order: the project's wins


def requested_address(args: list[str] | tuple[str, ...], env: dict | None = None,
                      config_files: list[str] | tuple[str, ...] = DEFAULT_CONFIG_FILES) -> str | None:
    """The address `streamlit run streamlit_app.py ARGS` would listen on, found the way Streamlit finds it.

    The last `--server.address X` or `--server.address=X` in `args`, else the
    STREAMLIT_SERVER_ADDRESS environment variable, else `[server] address` in the
    config files (a later file wins). None means unset: Streamlit then listens on
    every interface.

    Args:
        args: the arguments for `streamlit run` (what scripts/app.sh passes on).
        env: the environment (default `os.environ`).
        config_files: Streamlit's config files, in the order it reads them.
    """
    env = os.environ if env is None else env
    found = None
    for i, arg in enumerate(args):
        if arg == "--server.address":
            found = args[i + 1] if i + 1 < len(args) else ""
        elif arg.startswith("--server.address="):
            found = arg.split("=", 1)[1]
    if found is not None:
        return found
    if "STREAMLIT_SERVER_ADDRESS" in env:
        return env["STREAMLIT_SERVER_ADDRESS"]
    address = None
    for raw in config_files:
        path = Path(raw).expanduser()
        try:
            server = tomllib.loads(path.read_text(encoding="utf-8")).get("server") if path.is_file() else None
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            return None  # unreadable: nothing can be promised about where it listens
        if isinstance(server, dict) and "address" in server:
            address = str(server["address"])
    return address


def is_loopback(address: str | None) -> bool:
    """Whether `address` serves this machine only (127.0.0.1, ::1, localhost); unset or empty means every interface."""
    return address is not None and address.strip().strip("[]").lower() in LOOPBACK_ADDRESSES


def share_check(secrets_paths: list[str] | tuple[str, ...], share: bool, address: str | None = "127.0.0.1") -> str | None:
    """Why the studio must not start (scripts/app.sh), or None.

    A secrets file that cannot be read always stops it (the password in it would
    be silently off); serving on the network (`share`, or any `address` other than
    loopback, however it was asked for) also needs a password.
    """
    if not os.environ.get(PASSWORD_ENV):
        problem = unreadable_secrets(secrets_paths)
        if problem:
            return f"{problem}. Fix the file (or set {PASSWORD_ENV}) before starting the studio."
    if share or not is_loopback(address):
        table = {}
        for raw in secrets_paths:
            path = Path(raw).expanduser()
            if path.is_file():
                table.update(tomllib.loads(path.read_text(encoding="utf-8")))
        if configured_password(table) is None:
            where = "on the network" if share else (
                f"on {address!r}" if address else "on every network interface (server.address is unset or empty)")
            return (f"Serving {where}, not this machine only, needs a password: set {PASSWORD_ENV}, or [auth] password in "
                    ".streamlit/secrets.toml, then start again (or serve on 127.0.0.1).")
    return None


DEFAULT_SECRETS_FILES = ("~/.streamlit/secrets.toml", ".streamlit/secrets.toml")  # Streamlit's `secrets.files`


def main(argv: list[str] | None = None) -> int:
    """`python -m catdog.auth [--share] [ARGS for streamlit run]`: exit 1 with the reason when the studio must not start.

    scripts/app.sh passes on every argument it gives `streamlit run`, so an
    address asked for there is checked like `--share`.
    """
    import sys

    args = sys.argv[1:] if argv is None else argv
    share = "--share" in args
    rest = [arg for arg in args if arg != "--share"]
    problem = share_check(DEFAULT_SECRETS_FILES, share=share, address=requested_address(rest))
    if problem:
        print(f"catdog: not starting: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
