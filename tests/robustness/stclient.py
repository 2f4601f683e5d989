"""A bare Streamlit websocket client, as a hostile visitor would write one (no browser).

It speaks the app's protocol (protobuf BackMsg / ForwardMsg over `/_stcore/stream`)
so a test can send reruns faster than any browser would, name any page, and read
every element the server draws for the session.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect


@dataclass
class Drawn:
    """What the server sent one session: element texts, and its session id."""

    session_id: str = ""
    texts: list[str] = field(default_factory=list)
    messages: int = 0
    not_found: int = 0  # "Page not found" messages
    closed: str = ""  # why the server closed the connection, if it did


def element_text(msg: ForwardMsg) -> str | None:
    """The printed proto of a new element (its kind and every field), or None for other messages."""
    if msg.WhichOneof("type") != "delta" or msg.delta.WhichOneof("type") != "new_element":
        return None
    element = msg.delta.new_element
    kind = element.WhichOneof("type")
    return f"{kind}: {getattr(element, kind)}" if kind else None


def rerun(page_name: str = "", widget_states=None) -> bytes:
    """A BackMsg asking for a rerun of `page_name` (a URL path such as "runs")."""
    back = BackMsg()
    back.rerun_script.query_string = ""
    back.rerun_script.page_name = page_name
    if widget_states is not None:
        back.rerun_script.widget_states.CopyFrom(widget_states)
    return back.SerializeToString()


def race(url: str, page_name: str, reruns: int = 30, listen_s: float = 20.0, pause_s: float = 0.0, quiet_s: float = 3.0) -> Drawn:
    """Open a session, ask for `page_name`, then fire `reruns` more reruns; collect what is drawn.

    It listens until a script run has run to its end and the server has been quiet
    for `quiet_s` (the reruns coalesce), or `listen_s` at most.
    """
    drawn = Drawn()
    ws_url = url.replace("http://", "ws://") + "/_stcore/stream"
    # No keepalive pings: a server busy importing TensorFlow answers them late, and the point is to listen.
    with connect(ws_url, subprotocols=["streamlit"], open_timeout=60, max_size=None, ping_interval=None) as ws:
        ws.send(rerun(page_name))
        for _ in range(reruns):
            ws.send(rerun(page_name))
            if pause_s:
                time.sleep(pause_s)
        deadline, finished = time.time() + listen_s, False
        while time.time() < deadline:
            wait = min(quiet_s, deadline - time.time()) if finished else deadline - time.time()
            try:
                data = ws.recv(timeout=max(0.05, wait))
            except TimeoutError:
                if finished:
                    break
                continue
            except ConnectionClosed as exc:
                drawn.closed = str(exc)
                break
            msg = ForwardMsg()
            msg.ParseFromString(data)
            drawn.messages += 1
            # A run cut short by the next rerun is not the end: the next one may still be importing.
            finished = finished or (msg.WhichOneof("type") == "script_finished"
                                    and msg.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN)
            drawn.not_found += msg.WhichOneof("type") == "page_not_found"
            if msg.WhichOneof("type") == "new_session":
                drawn.session_id = msg.new_session.initialize.session_id
            text = element_text(msg)
            if text is not None:
                drawn.texts.append(text)
    return drawn


def upload(url: str, session_id: str, data: bytes, file_id: str = "x", name: str = "blob.bin") -> int:
    """PUT one file to the session's upload endpoint with a self-made XSRF token; the HTTP status."""
    import requests

    token = "c0ffee" * 8  # any hex string is a valid (v1) token when the cookie and the header agree
    answer = requests.put(f"{url}/_stcore/upload_file/{session_id}/{file_id}", files={"file": (name, data)},
                          headers={"X-Xsrftoken": token}, cookies={"_streamlit_xsrf": token}, timeout=120)
    return answer.status_code
