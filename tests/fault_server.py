"""A scripted OpenAI-compatible server that misbehaves on purpose (stdlib only).

It runs in a thread on 127.0.0.1 (port 0) and answers ``GET /v1/models`` and
``POST /v1/chat/completions``. Every chat request takes the next mode of its script (the
last mode repeats). In the good mode it answers every id it is asked, exactly as asked,
with the cell type that the cluster's markers (read from the prompt) stand for, so a
label that lands on the wrong cluster is visible. The other modes are the faults a real
server (llama.cpp included) cannot be made to produce on demand:

``ok``           every asked id, exactly, with its right answer
``429``          HTTP 429 with ``Retry-After`` (``retry_after`` seconds)
``500``/``503``  server errors
``400echo``      HTTP 400 whose message repeats the Authorization header
``drop``         the connection is closed without a response
``partial``      half of the body, then the connection is closed
``slow``         the right answer after ``slow_seconds`` (the client times out first)
``html``         200 with a web page (``text/html``)
``html_json``    200 with a web page labelled ``application/json``
``not_chat``     200 with JSON that is not a chat completion
``prose``        an answer in words, no JSON
``invalid``      JSON whose confidence lies outside [0, 1]
``truncated``    JSON cut off at the token limit (``finish_reason="length"``)
``missing``      the last asked id left out (when more than one is asked)
``duplicated``   the first id twice (a wrong answer, then the right one)
``extra``        an id that was not asked, with a wrong answer
``reordered``    the ids in reverse order
``spaces``       each id right, then ``"<id> "`` and ``" <id>"`` with wrong answers
``spaces_only``  each answer under ``"<id> "`` only
``integer``      a list of items whose ``"id"`` is a JSON number
``echo``         the right answers, with the Authorization header in every reasoning

``models_mode`` sets the ``/v1/models`` answer: ``ok``, ``html`` or ``echo`` (the
Authorization header as the only model served).
"""

from __future__ import annotations

import http.server
import json
import re
import threading
import time
from typing import Any

#: Marker gene -> the cell type the good server answers for a cluster led by it.
GENE_TYPES = {
    **dict.fromkeys(["MS4A1", "CD79A", "CD79B", "CD19", "BANK1", "CD22", "PAX5", "TCL1A"],
                    "B cell"),
    **dict.fromkeys(["CD3D", "CD3E", "CD3G", "CD2", "IL7R", "LCK", "TRAC", "CD5"], "T cell"),
    **dict.fromkeys(["NKG7", "GNLY", "KLRD1", "KLRF1", "PRF1", "NCAM1", "GZMB", "KLRC1"],
                    "natural killer cell"),
    **dict.fromkeys(["CD14", "LYZ", "S100A8", "S100A9", "FCN1", "VCAN", "CSF1R", "MNDA"],
                    "monocyte"),
    **dict.fromkeys(["ALB", "APOA1", "APOC3", "TTR", "SERPINA1", "HP", "FGB", "AHSG"],
                    "hepatocyte"),
}
WRONG = "plasma cell"  # what a fault answers where a label must not land

_BLOCK = re.compile(r'Cluster id "(.*?)" \(.*?\)\. Markers, most specific first: ([^\n]*)\.')
_ASKED = re.compile(r"written exactly as shown: (.*?)\. Use")


def item(cell_type: str, reasoning: str = "markers", confidence: float = 0.9) -> dict:
    """One answer item."""
    return {"cell_type": cell_type, "confidence": confidence, "reasoning": reasoning,
            "alternatives": []}


def _asked_ids(body: dict) -> list[str]:
    fmt = body.get("response_format") or {}
    schema = (fmt.get("json_schema") or {}).get("schema") or fmt.get("schema")
    if schema:
        return list(schema["properties"]["answers"]["required"])
    text = body["messages"][-1]["content"]
    m = _ASKED.search(text)
    return json.loads(f"[{m.group(1)}]") if m else []


def _cell_types(body: dict) -> dict[str, str]:
    """Cluster id as shown -> the cell type its markers stand for."""
    out: dict[str, str] = {}
    for message in body["messages"]:
        for cid, genes in _BLOCK.findall(message.get("content") or ""):
            first = next((GENE_TYPES[g] for g in genes.split(", ") if g in GENE_TYPES),
                         "unknown")
            out[cid] = first
    return out


def _content(mode: str, body: dict, auth: str) -> tuple[str, str]:
    """The message content and finish reason of a 200 answer in ``mode``."""
    ids = _asked_ids(body)
    types = _cell_types(body)
    right = {i: item(types.get(i, "unknown"), f"markers of {i}") for i in ids}
    if mode == "prose":
        return "These look like B cells to me, mostly.", "stop"
    if mode == "invalid":
        return json.dumps({"answers": {i: {**v, "confidence": 1.5} for i, v in right.items()}}
                          ), "stop"
    if mode == "truncated":
        return json.dumps({"answers": right})[:-25], "length"
    if mode == "missing" and len(ids) > 1:
        right.pop(ids[-1])
    if mode == "duplicated":
        first = json.dumps(ids[0])
        inner = ", ".join([f"{first}: {json.dumps(item(WRONG))}"]
                          + [f"{json.dumps(i)}: {json.dumps(v)}" for i, v in right.items()])
        return '{"answers": {' + inner + "}}", "stop"
    if mode == "extra":
        right["99"] = item(WRONG)
    if mode == "reordered":
        right = dict(reversed(list(right.items())))
    if mode == "spaces":
        varied: dict[str, Any] = {}
        for i, v in right.items():
            varied.update({i: v, f"{i} ": item(WRONG), f" {i}": item(WRONG)})
        right = varied
    if mode == "spaces_only":
        right = {f"{i} ": v for i, v in right.items()}
    if mode == "integer":
        items = [{"id": int(i) if i.isdigit() else i, **v} for i, v in right.items()]
        return json.dumps({"answers": items}), "stop"
    if mode == "echo":
        right = {i: {**v, "reasoning": f"you sent {auth}"} for i, v in right.items()}
    return json.dumps({"answers": right}), "stop"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, data: bytes, ctype: str = "application/json",
              headers: dict[str, str] | None = None, cut: bool = False) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            if cut:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data[: len(data) // 2] if cut else data)
            self.wfile.flush()
        except OSError:  # the client gave up (timeout): nothing to tell it
            pass
        if cut:
            self.close_connection = True

    def _json(self, status: int, obj: object, **kw: Any) -> None:
        self._send(status, json.dumps(obj).encode(), **kw)

    def do_GET(self) -> None:
        srv = self.server
        if srv.models_mode == "html":
            self._send(200, b"<html><body>It works!</body></html>", "text/html")
            return
        model = self.headers.get("Authorization", "") if srv.models_mode == "echo" else "m"
        self._json(200, {"object": "list", "data": [{"id": model, "object": "model",
                                                      "owned_by": "fault-server"}]})

    def do_POST(self) -> None:
        srv = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        auth = self.headers.get("Authorization", "")
        mode = srv.next_mode(body, auth)
        if mode in ("429", "500", "503"):
            self._json(int(mode), {"error": {"message": "try again", "type": "server"}},
                       headers={"Retry-After": f"{srv.retry_after:g}"})
        elif mode == "400echo":
            self._json(400, {"error": {"message": f"bad request from {auth}", "type": "x"}})
        elif mode == "drop":
            self.close_connection = True
        elif mode in ("html", "html_json"):
            page = b"<!DOCTYPE html><html><body><h1>Welcome to nginx!</h1></body></html>"
            self._send(200, page, "text/html" if mode == "html" else "application/json")
        elif mode == "not_chat":
            self._json(200, {"status": "ok", "message": "this is not a chat API"})
        else:
            if mode == "slow":
                time.sleep(srv.slow_seconds)
            content, finish = _content(mode, body, auth)
            self._json(200, {
                "id": "c", "object": "chat.completion", "created": 0, "model": "m",
                "choices": [{"index": 0, "finish_reason": finish,
                             "message": {"role": "assistant", "content": content}}],
                "usage": {"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60},
            }, cut=mode == "partial")


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.script: list[str] = ["ok"]
        self.models_mode = "ok"
        self.retry_after = 0.0
        self.slow_seconds = 2.0
        self.seen: list[dict] = []
        self.auth: list[str] = []

    def next_mode(self, body: dict, auth: str) -> str:
        with self.lock:
            self.seen.append(body)
            self.auth.append(auth)
            return self.script.pop(0) if len(self.script) > 1 else self.script[0]

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that hung up is part of the game; print nothing


class FaultServer:
    """The scripted server; use as a context manager.

    Attributes
    ----------
    url
        The base URL (``http://127.0.0.1:PORT/v1``).
    """

    def __init__(self) -> None:
        self._server = _Server()
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,),
                                        daemon=True)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def script(self, *modes: str, models: str = "ok", retry_after: float = 0.0,
               slow_seconds: float = 2.0) -> FaultServer:
        """Answer the next chat requests in these modes (the last one repeats)."""
        s = self._server
        with s.lock:
            s.script = list(modes) or ["ok"]
            s.models_mode = models
            s.retry_after = retry_after
            s.slow_seconds = slow_seconds
        return self

    @property
    def seen(self) -> list[dict]:
        """The chat request bodies received."""
        return list(self._server.seen)

    @property
    def auth(self) -> list[str]:
        """The Authorization headers received with them."""
        return list(self._server.auth)

    def asked(self) -> list[list[str]]:
        """The ids asked in each chat request, in order."""
        return [_asked_ids(b) for b in self.seen]
