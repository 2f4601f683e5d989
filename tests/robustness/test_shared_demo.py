"""The shared demo (issue 17, items 1-6, 22, 23): a password that cannot be raced, switched off or guessed
quickly, bounded uploads before sign-in, a gate that works as a login, local-only serving, names shown
literally, and no outside request.

The fast tests drive the app in-process (AppTest); the `slow` ones start real
servers and talk to them as a hostile client would (tests/robustness/stclient.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import tomllib
from markdown_it import MarkdownIt
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

from catdog import auth
from tests.fixtures import REPO
from tests.server import streamlit_server

PASSWORD = "s3cret-demo-pass"
TIMEOUT = 90
PAGES = ("data", "train", "predict", "runs", "evaluate")
# What the gate itself draws; anything else a signed-out session receives is page content.
GATE_TEXT = ("catdog studio", "catdog_password", "FormSubmitter:catdog_login", "shared with a password",
             "Wrong password", "Too many attempts", "is locked")


@pytest.fixture
def password(monkeypatch):
    monkeypatch.setenv(auth.PASSWORD_ENV, PASSWORD)
    auth.GUESSES.reset()
    yield PASSWORD
    auth.GUESSES.reset()


def fresh_home(root: Path, name: str = "home") -> Path:
    (root / name).mkdir(parents=True, exist_ok=True)
    return root / name


def submit(at: AppTest, text: str) -> AppTest:
    at.text_input(key="catdog_password").input(text)
    return at.button[0].click().run()  # a form's values are sent with its submit button


def page_content(texts) -> list[str]:
    return [t for t in texts if not any(mark in t for mark in GATE_TEXT)]


# --- 1. No page draws or acts for a session that has not signed in, however it is reached ---

@pytest.mark.parametrize("name", PAGES)
def test_a_page_file_run_on_its_own_shows_only_the_form(home, password, name, stats):
    """Streamlit's pages/ mode runs a page file directly, with the entry point's mark already set."""
    at = AppTest.from_file(str(REPO / "pages" / f"{name}.py"), default_timeout=TIMEOUT)
    at.session_state["catdog_app_navigation"] = True  # what an interrupted entry point run leaves behind
    at.run()
    assert not at.exception
    assert at.text_input(key="catdog_password") is not None
    assert [t.value for t in at.title] == [":material/lock: catdog studio"]
    drawn = [str(getattr(e, "value", None) or getattr(e, "label", None) or type(e).__name__)
             for e in at.main if not type(e).__name__.endswith("Block")]
    assert not page_content([d for d in drawn if d not in ("Password", "Enter")]), drawn
    stats.input(False)


RACE_TRIES = int(os.environ.get("CATDOG_RACE_TRIES", "20"))


@pytest.mark.slow
def test_racing_reruns_at_fresh_servers_never_see_a_page(tmp_path, stats):
    """Freshly started servers x 10 sessions, each: a rerun for a page then 30 more, spaced so some interrupt.

    At least RACE_TRIES sessions (20; CATDOG_RACE_TRIES=50 for a longer hunt) must have been drawn
    something (one that got no answer at all from a server busy importing TensorFlow proves nothing
    either way, and is made up by another server). On the code before the page-level check, a
    standalone run of this race drew Runs without a password in 2 of 6 tries.
    """
    from tests.robustness.stclient import race

    tries, silent, server = 0, [], 0
    sessions = 10  # per fresh server: 20 tries from about 2 server starts keeps CI's time in bounds
    while tries < RACE_TRIES and server < 3 * RACE_TRIES // sessions:
        with streamlit_server(fresh_home(tmp_path, f"home{server}"), **{auth.PASSWORD_ENV: PASSWORD}) as (url, _log):
            results: list = [None] * sessions

            def go(i: int, url: str = url, server: int = server, results: list = results) -> None:
                try:
                    results[i] = race(url, PAGES[(server + i) % len(PAGES)], reruns=30, pause_s=0.05 * (1 + i % 3), listen_s=180)
                except Exception as exc:  # noqa: BLE001 - reported below
                    results[i] = exc

            threads = [threading.Thread(target=go, args=(i,)) for i in range(sessions)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        for drawn in results:
            stats.fault(31)
            assert not isinstance(drawn, Exception), drawn
            if not drawn.texts:
                silent.append(f"{drawn.messages} messages, closed: {drawn.closed or 'no'}")
                continue
            tries += 1
            leaked = page_content(drawn.texts)
            assert not leaked, f"server {server}: a signed-out session saw page content: {leaked[:3]}"
        server += 1
    stats.note(f"gate race: {tries} sessions x 31 reruns at {server} fresh servers saw no page content "
               f"({len(silent)} got no answer: {silent[:3]})")
    assert tries >= RACE_TRIES, silent


# --- 2. A password that is configured but cannot be read keeps the app locked ---

@pytest.fixture
def broken_secrets(tmp_path, monkeypatch):
    """A secrets.toml with a syntax error (and a password in it), as Streamlit's only secrets file."""
    path = tmp_path / "secrets.toml"
    path.write_text('[auth]\npassword = "forgot the closing quote\n')
    monkeypatch.delenv(auth.PASSWORD_ENV, raising=False)
    old = st_config.get_option("secrets.files")
    st_config.set_option("secrets.files", [str(path)])
    yield path
    st_config.set_option("secrets.files", old)


def test_an_unreadable_secrets_file_keeps_every_page_locked(home, broken_secrets, stats):
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert any("locked" in e.value and "secrets.toml" in e.value for e in at.error)
    assert str(broken_secrets) not in " ".join(e.value for e in at.error)  # the server's paths stay in its log
    assert not at.subheader and not [t for t in at.text_input if t.key == "catdog_password"]
    at = AppTest.from_file(str(REPO / "pages" / "runs.py"), default_timeout=TIMEOUT)
    at.session_state["catdog_app_navigation"] = True
    at.run()
    assert [t.value for t in at.title] == [":material/lock: catdog studio"]
    stats.input(False)


def test_unreadable_secrets_are_named_with_their_line(tmp_path):
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text('[auth]\npassword = "x"\n')
    bad.write_text("[auth\n")
    assert auth.unreadable_secrets([str(tmp_path / "missing.toml"), str(good)]) is None
    assert "line 1" in auth.unreadable_secrets([str(good), str(bad)])


# --- 3. Guessing is slowed per session and server-wide, and logged without the guess ---

def test_a_session_waits_longer_after_each_wrong_guess(home, password, stats):
    from pages._gate import ATTEMPTS_KEY

    now = [1000.0]  # the session's clock, moved by the test: a slow machine cannot end the wait early
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT)
    at.session_state[ATTEMPTS_KEY] = auth.Attempts(clock=lambda: now[0])
    at.run()
    for _ in range(2):  # auth.FREE_GUESSES = 3: the third wrong answer starts the waits
        assert [e.value for e in submit(at, "guess").error] == ["Wrong password."]
    assert "try again in 2 s" in submit(at, "guess").error[0].value
    now[0] += 1.9
    submit(at, PASSWORD)  # the right answer, but during the wait: not even checked
    assert any("Too many attempts" in e.value for e in at.error) and not at.subheader
    now[0] += 0.2  # the 2 s are over: the same answer now signs in
    submit(at, PASSWORD)
    assert not at.error and not [t for t in at.text_input if t.key == "catdog_password"], [e.value for e in at.error]
    stats.input(False, 4)
    stats.input(True)
    assert [auth.session_delay_s(n) for n in range(1, 10)] == [0, 0, 2, 4, 8, 16, 32, 60, 60]


@pytest.mark.slow
def test_new_sessions_gain_nothing_the_server_wide_bucket_holds(home, password, monkeypatch, stats):
    monkeypatch.setattr(auth, "GUESSES", auth.GuessLimiter(burst=3, per_minute=1))
    for _ in range(3):  # three visitors, one wrong guess each
        at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT).run()
        assert [e.value for e in submit(at, "guess").error] == ["Wrong password."]
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT).run()
    submit(at, PASSWORD)
    assert any("Too many attempts" in e.value for e in at.error) and not at.subheader
    stats.input(False, 4)


def test_the_bucket_refills_at_its_rate():
    now = [0.0]
    limiter = auth.GuessLimiter(burst=2, per_minute=6, clock=lambda: now[0])
    assert [limiter.take(), limiter.take()] == [0.0, 0.0]
    assert limiter.take() == pytest.approx(10.0)
    now[0] = 10.0
    assert limiter.take() == 0.0 and limiter.take() > 0
    with pytest.raises(ValueError, match="burst"):
        auth.GuessLimiter(burst=0)


def test_wrong_guesses_are_logged_without_their_text(home, password, caplog):
    caplog.set_level(logging.WARNING, logger="catdog.auth")
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT).run()
    submit(at, "hunter2-guess")
    lines = [r.getMessage() for r in caplog.records if r.name == "catdog.auth"]
    assert len(lines) == 1 and "wrong password" in lines[0]
    assert "hunter2" not in caplog.text and PASSWORD not in caplog.text


# --- 4. Uploads before sign-in: bounded in size, and dropped soon after the session goes ---

def server_settings() -> dict:
    return tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())["server"]


def test_the_servers_upload_limits_are_the_documented_ones(stats):
    settings = server_settings()
    assert settings["maxUploadSize"] <= 200  # MB per file
    assert settings["disconnectedSessionTTL"] <= 30  # s that a closed session's uploads are kept (Streamlit: 120)


@pytest.mark.slow
def test_an_upload_over_the_limit_is_refused_before_sign_in_without_growing_the_server(tmp_path, stats):
    """The per-file limit holds for a session that never signed in (1 MB here, so the test sends 2 MB, not 201)."""
    from tests.robustness.stclient import upload

    with streamlit_server(fresh_home(tmp_path), **{auth.PASSWORD_ENV: PASSWORD, "STREAMLIT_SERVER_MAX_UPLOAD_SIZE": "1"}) as (url, _):
        pid = server_pid(int(url.rsplit(":", 1)[1]))
        with signed_out_session(url) as own:
            before = rss_mb(pid)
            statuses = [upload(url, own, os.urandom(2 * 1024 * 1024), file_id="big"),
                        upload(url, own, os.urandom(512 * 1024), file_id="small")]
            after = rss_mb(pid)
    stats.fault()
    assert statuses == [413, 204], statuses  # the small one shows the session takes uploads: the big one was refused for its size
    assert after - before < 20, (before, after)


@contextlib.contextmanager
def signed_out_session(url: str):
    """A browser session that never signs in, kept open; yields its session id."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from websockets.sync.client import connect

    from tests.robustness.stclient import rerun

    with connect(url.replace("http://", "ws://") + "/_stcore/stream", subprotocols=["streamlit"], ping_interval=None) as ws:
        ws.send(rerun(""))
        own = ""
        while not own:
            msg = ForwardMsg()
            msg.ParseFromString(ws.recv(timeout=30))
            if msg.WhichOneof("type") == "new_session":
                own = msg.new_session.initialize.session_id
        yield own


def server_pid(port: int) -> int:
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"streamlit" in b" ".join(cmd) and str(port).encode() in cmd:
                return int(proc.name)
    raise AssertionError(f"no streamlit process on port {port}")


def rss_mb(pid: int) -> float:
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("VmRSS"))
    return int(line.split()[1]) / 1024


@pytest.mark.slow
def test_uploads_of_a_signed_out_session_are_freed_when_a_session_leaves_after_the_ttl(tmp_path, stats):
    """What docs/security.md says, measured: Streamlit keeps a closed session, uploads and all, until a session
    storage write after its TTL, that is the next session to disconnect; a visitor merely connecting frees nothing."""
    from tests.robustness.stclient import upload

    ttl = 5  # config.toml's own 30 s is checked above; the mechanism is the same
    with streamlit_server(fresh_home(tmp_path), **{auth.PASSWORD_ENV: PASSWORD,
                                                   "STREAMLIT_SERVER_DISCONNECTED_SESSION_TTL": str(ttl)}) as (url, _log):
        pid = server_pid(int(url.rsplit(":", 1)[1]))
        with signed_out_session(url) as own:
            before = rss_mb(pid)
            blob = os.urandom(40 * 1024 * 1024)
            statuses = [upload(url, own, blob, file_id=f"f{i}") for i in range(3)]
            held = rss_mb(pid)
        time.sleep(ttl + 5)
        alone = rss_mb(pid)  # nobody else came: nothing asks Streamlit to drop the expired session
        with signed_out_session(url):
            time.sleep(3)
            visitor_here = rss_mb(pid)
        time.sleep(2)
        visitor_gone = rss_mb(pid)
    stats.fault(3)
    stats.note(f"uploads before sign-in: RSS {before:.0f} MB -> {held:.0f} MB with 3 x 40 MB; {ttl + 5} s after the "
               f"session left {alone:.0f} MB; with the next visitor connected {visitor_here:.0f} MB; "
               f"2 s after that visitor left {visitor_gone:.0f} MB (TTL {ttl} s)")
    assert statuses == [204, 204, 204] and held - before > 80, (statuses, before, held)
    assert alone - before > 80 and visitor_here - before > 80, (before, held, alone, visitor_here)
    assert visitor_gone - before < 40, (before, held, alone, visitor_here, visitor_gone)


# --- 5. The gate is a login: deep links, the page asked for, signed-in tokens ---

def _locked_navigation() -> None:
    import streamlit as st

    import streamlit_app

    st.session_state["locked"] = [(page.url_path, page.title) for page in streamlit_app.locked_pages()]


def test_every_page_url_has_a_locked_stand_in(home, password):
    """Signed out, each page's URL is served by the sign-in form (a deep link is never 'Page not found')."""
    import streamlit_app

    at = AppTest.from_function(_locked_navigation, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    locked = dict(at.session_state["locked"])
    assert {name for name, _title, _icon in streamlit_app.PAGES} <= set(locked), locked
    assert set(locked.values()) == {"Sign in"}
    # And what the signed-out app registers is exactly these (a real server's deep links: the slow test below).
    app = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT).run()
    assert not app.exception and [t.key for t in app.text_input] == ["catdog_password"] and not app.subheader
    with pytest.raises(ValueError):
        app.switch_page("pages/data.py")  # signed out, the page files themselves are not registered: only their stand-ins


@pytest.mark.slow
def test_a_deep_link_before_sign_in_is_no_page_not_found(tmp_path):
    from tests.robustness.stclient import race

    with streamlit_server(fresh_home(tmp_path), **{auth.PASSWORD_ENV: PASSWORD}) as (url, _log):
        race(url, "", reruns=0)  # the server's first run over, as for any later visitor
        for name in PAGES:
            drawn = race(url, name, reruns=0)
            assert not drawn.not_found, name
            assert any("catdog_password" in t for t in drawn.texts) and not page_content(drawn.texts), name


def test_sign_in_tokens_expire_are_tied_to_the_password_and_never_hold_it():
    token = auth.make_token(PASSWORD, now=1000.0, ttl_s=60)
    assert PASSWORD not in token and auth.token_valid(token, PASSWORD, now=1059.0)
    assert not auth.token_valid(token, PASSWORD, now=1061.0)  # expired
    assert not auth.token_valid(token, "another password", now=1001.0)
    expiry, nonce, signature = token.split(".")
    assert not auth.token_valid(f"{int(expiry) + 3600}.{nonce}.{signature}", PASSWORD, now=1001.0)  # tampered
    assert not auth.token_valid("", PASSWORD) and not auth.token_valid(None, PASSWORD) and not auth.token_valid("a.b.c", PASSWORD)


# --- 6. Local by default; sharing is one explicit, password-protected step ---

def test_the_server_listens_on_this_machine_only_by_default():
    assert server_settings()["address"] == "127.0.0.1"


def run_app_sh(tmp_path: Path, *args: str, **env: str) -> tuple[subprocess.CompletedProcess, str]:
    """scripts/app.sh with `python3` shimmed: the password check runs for real, pip and streamlit are only recorded."""
    shim = tmp_path / "bin"
    shim.mkdir(exist_ok=True)
    record = tmp_path / "calls.txt"
    record.unlink(missing_ok=True)
    (shim / "python3").write_text(
        f'#!/bin/sh\nif [ "$1 $2" = "-m catdog.auth" ]; then exec {sys.executable} "$@"; fi\n'
        f'echo "$@" >> {record}\n')
    (shim / "python3").chmod(0o755)
    full = {k: v for k, v in os.environ.items() if k not in (auth.PASSWORD_ENV, "CATDOG_SHARE")}
    full.update(PATH=f"{shim}:{os.environ['PATH']}", HOME=str(tmp_path / "home"), **env)
    done = subprocess.run(["bash", str(REPO / "scripts" / "app.sh"), *args], env=full, capture_output=True, text=True, timeout=60)
    return done, record.read_text() if record.exists() else ""


def test_sharing_refuses_to_start_without_a_password(tmp_path, stats):
    for args, env in ((["--share"], {}), ([], {"CATDOG_SHARE": "1"})):
        done, calls = run_app_sh(tmp_path, *args, **env)
        assert done.returncode != 0 and "needs a password" in done.stderr and "streamlit" not in calls
        stats.input(False)
    done, calls = run_app_sh(tmp_path, "--share", "--server.port", "9999", **{auth.PASSWORD_ENV: "pw"})
    assert done.returncode == 0 and "streamlit run streamlit_app.py --server.address 0.0.0.0 --server.port 9999" in calls
    done, calls = run_app_sh(tmp_path)
    assert done.returncode == 0 and "streamlit run streamlit_app.py" in calls and "0.0.0.0" not in calls


@pytest.mark.parametrize(("args", "env"), [
    (["--server.address", "127.0.0.2"], {}),
    (["--server.address", "0.0.0.0"], {}),
    (["--server.address=0.0.0.0"], {}),
    (["--server.port", "9999", "--server.address", ""], {}),
    (["--server.address", "127.0.0.1", "--server.address", "::"], {}),  # the last one counts, as in Streamlit
    ([], {"STREAMLIT_SERVER_ADDRESS": "0.0.0.0"}),
    ([], {"STREAMLIT_SERVER_ADDRESS": "192.168.1.5"}),
])
def test_any_address_but_loopback_needs_the_password_however_it_is_asked_for(tmp_path, args, env, stats):
    done, calls = run_app_sh(tmp_path, *args, **env)
    stats.fault()
    assert done.returncode != 0 and "needs a password" in done.stderr and "streamlit" not in calls, (done.stderr, calls)
    done, calls = run_app_sh(tmp_path, *args, **env, **{auth.PASSWORD_ENV: "pw"})
    assert done.returncode == 0 and "streamlit run streamlit_app.py" in calls, done.stderr


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "localhost", "[::1]", "LOCALHOST"])
def test_loopback_addresses_start_without_a_password(tmp_path, address):
    for args, env in ((["--server.address", address], {}), ([f"--server.address={address}"], {}),
                      ([], {"STREAMLIT_SERVER_ADDRESS": address})):
        done, calls = run_app_sh(tmp_path, *args, **env)
        assert done.returncode == 0 and "streamlit run streamlit_app.py" in calls, (args, env, done.stderr)


def test_the_address_in_streamlits_config_files_counts_and_the_projects_file_wins(tmp_path):
    user, project = tmp_path / "user.toml", tmp_path / "project.toml"
    user.write_text('[server]\naddress = "0.0.0.0"\n')
    assert auth.requested_address([], env={}, config_files=[str(user)]) == "0.0.0.0"
    assert auth.share_check([], share=False, address=auth.requested_address([], env={}, config_files=[str(user)]))
    project.write_text('[server]\naddress = "127.0.0.1"\n')
    assert auth.requested_address([], env={}, config_files=[str(user), str(project)]) == "127.0.0.1"
    assert auth.requested_address([], env={"STREAMLIT_SERVER_ADDRESS": "10.0.0.1"}, config_files=[str(project)]) == "10.0.0.1"
    project.write_text("[server]\nport = 8502\n")  # no address anywhere: Streamlit listens on every interface
    assert auth.requested_address([], env={}, config_files=[str(project)]) is None
    assert not auth.is_loopback(None) and not auth.is_loopback("") and not auth.is_loopback("127.0.0.2")


def test_the_studio_refuses_to_start_with_an_unreadable_secrets_file(tmp_path):
    (tmp_path / "home" / ".streamlit").mkdir(parents=True)
    (tmp_path / "home" / ".streamlit" / "secrets.toml").write_text('[auth]\npassword = "x\n')
    done, calls = run_app_sh(tmp_path)
    assert done.returncode != 0 and "secrets.toml cannot be read" in done.stderr and "streamlit" not in calls


# --- 22. Names from outside are shown as they are, never as Markdown ---

HOSTILE_NAMES = ("[click me](javascript:alert(1)).jpg", ":red[red] and :material/home:.png", "a`b``c.jpg",
                 "**bold** _it_ $x^2$ <b>html</b>.jpg", "`edge`")


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_code_span_shows_a_name_literally(name):
    from pages._text import code_span

    tokens = MarkdownIt("commonmark").parseInline(code_span(name))[0].children
    assert [t.type for t in tokens] == ["code_inline"] and tokens[0].content == name



@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_plain_shows_an_error_message_with_a_name_as_text(name):
    from pages._text import plain

    message = f"Folder not found: /data/{name} (check the path)"
    tokens = MarkdownIt("commonmark").parseInline(plain(message))[0].children
    assert [t.type for t in tokens] == ["text"] and tokens[0].content == message  # no link, emphasis, code or HTML


def _folder_box(name: str) -> None:
    from pages._ui import allowed_folder

    allowed_folder(f"/{name}")  # outside every allowed root: refused, and the message names the path


def test_an_error_naming_a_hostile_folder_draws_no_link(home):
    name = "[click me](https://example.com/x) *and* `this`"  # markdown-it would refuse a javascript: link anyway
    at = AppTest.from_function(_folder_box, args=(name,), default_timeout=TIMEOUT).run()
    assert not at.exception and at.error, "the page says the folder was refused"
    tokens = MarkdownIt("commonmark").parseInline(at.error[0].value)[0].children
    assert [t.type for t in tokens] == ["text"] and name in tokens[0].content

def _predict_card(name: str) -> None:
    from catdog.predict import Prediction
    from pages.predict import Upload, render_result_card

    render_result_card(Prediction(file=name, error="not a supported image"), Upload(name, b"x"), None)


def test_the_predict_page_shows_upload_names_as_plain_text(stats):
    for name in HOSTILE_NAMES[:2]:
        at = AppTest.from_function(_predict_card, args=(name,), default_timeout=TIMEOUT)
        at.session_state["catdog_app_navigation"] = True
        at.run()
        shown = [m.value for m in [*at.markdown, *at.caption] if "click me" in m.value or "red]" in m.value]
        assert shown, "the card shows the name"
        for value in shown:
            tokens = MarkdownIt("commonmark").parseInline(value)[0].children
            assert not [t for t in tokens if t.type == "link_open"]
            assert name in [t.content for t in tokens if t.type == "code_inline"], value
        stats.input(False)


# --- 23. No outside request: the favicon is a local file ---

@pytest.mark.parametrize("page", ("", *PAGES))
def test_the_page_icon_is_a_local_image(home, monkeypatch, page):
    """Whatever page is opened, the only page config sets a small local image (a ":material/…:" or emoji icon
    is fetched from a font server or CDN)."""
    import streamlit as st

    configs = []
    real = st.set_page_config
    monkeypatch.setattr(st, "set_page_config", lambda *a, **k: configs.append(k) or real(*a, **k))
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT).run()
    if page:
        at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, at.exception
    icons = {str(k.get("page_icon")) for k in configs}
    assert configs and len(icons) == 1, configs
    icon = Path(icons.pop())
    assert icon.is_absolute() and icon.is_file() and icon.stat().st_size < 20_000, icon
