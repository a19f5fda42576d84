"""Start, health-check and stop a local OpenAI-compatible LLM server (xllamacpp) on 127.0.0.1.

The server runs in a child process (`rag/models/worker.py`): the model loads without blocking
the caller past `startup_timeout_s`, llama.cpp's logs go to a file rather than the terminal, a
crash in native code cannot take paperchat down, and stopping it always frees the model's memory.
paperchat then talks to it over HTTP with the real `openai` client, exactly as it talks to OpenAI.

Use it as a context manager, or call `start()` and `stop()`:

    with LocalLLMServer(tiny_model_path(), alias="smollm2-135m-instruct") as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="local")
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO

from paperchat.errors import LLMUnavailable

_WORKER = Path(__file__).with_name("worker.py")
_STOP_GRACE_S = 10.0


def available_cores() -> int:
    """CPU cores this process may run on (what `llm_threads = 0` means)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class LocalLLMServer:
    """One GGUF model served by xllamacpp at `http://127.0.0.1:<free port>/v1`.

    Args:
        model_path: The GGUF file.
        alias: Model name the server reports and the client sends.
        threads: CPU threads for prompt reading and generation; 0 uses every available core.
        context: Context window in tokens (prompt plus answer).
        startup_timeout_s: How long loading the model and the first health check may take.
        log_path: Where llama.cpp's log goes; default a `paperchat-llm-*.log` in the temp dir.
    """

    def __init__(
        self,
        model_path: Path,
        *,
        alias: str,
        threads: int = 0,
        context: int = 4096,
        startup_timeout_s: float = 300.0,
        log_path: Path | None = None,
    ) -> None:
        self.model_path = Path(model_path)
        self.alias = alias
        self.threads = threads or available_cores()
        self.context = context
        self.startup_timeout_s = startup_timeout_s
        self.log_path = log_path
        self._process: subprocess.Popen[str] | None = None
        self._address: str | None = None
        self._finalizer: weakref.finalize | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> LocalLLMServer:
        """Launch the server and wait until `/health` answers ok.

        Raises:
            LLMUnavailable: the model file is missing, the server exited while loading (the
                message quotes the end of its log), or it was not ready in `startup_timeout_s`.
        """
        if self._process is not None:
            return self
        if not self.model_path.is_file():
            raise LLMUnavailable(
                f"Cannot start the local LLM server: {self.model_path} is missing."
            )
        log = self._open_log()
        command = [
            sys.executable, str(_WORKER), "--model", str(self.model_path), "--alias", self.alias,
            "--threads", str(self.threads), "--ctx", str(self.context),
        ]  # fmt: skip
        env = worker_env(os.environ)
        with log:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=env,
            )
        self._finalizer = weakref.finalize(self, _terminate, self._process)
        deadline = time.monotonic() + self.startup_timeout_s
        try:
            self._address = self._read_address(deadline)
            self._wait_healthy(deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Shut the server down and wait for its process to exit. Safe to call twice."""
        if self._finalizer is not None:
            self._finalizer()  # runs _terminate once; later calls do nothing
        self._process = None
        self._address = None

    def __enter__(self) -> LocalLLMServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- state -----------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def address(self) -> str:
        """`http://127.0.0.1:PORT` of the running server."""
        if self._address is None:
            raise LLMUnavailable("The local LLM server is not running; call start() first.")
        return self._address

    @property
    def base_url(self) -> str:
        """OpenAI-compatible base URL (`.../v1`) to hand to the `openai` client."""
        return self.address + "/v1"

    def healthy(self, timeout_s: float = 2.0) -> bool:
        """True when `/health` answers `{"status": "ok"}`."""
        try:
            with urllib.request.urlopen(self.address + "/health", timeout=timeout_s) as reply:
                return bool(json.load(reply).get("status") == "ok")
        except (OSError, ValueError, LLMUnavailable):
            return False

    # -- helpers ---------------------------------------------------------------------------------

    def _open_log(self) -> IO[bytes]:
        if self.log_path is None:
            handle = tempfile.NamedTemporaryFile(
                prefix="paperchat-llm-", suffix=".log", delete=False
            )
            self.log_path = Path(handle.name)
            return handle
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        return self.log_path.open("wb")

    def _read_address(self, deadline: float) -> str:
        process = self._process
        if process is None or process.stdout is None:
            raise LLMUnavailable("The local LLM server is not running; call start() first.")
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self._not_ready("did not finish loading the model")
                if selector.select(timeout=min(remaining, 0.5)):
                    line = process.stdout.readline()
                    if not line:  # stdout closed: the worker exited
                        process.wait(timeout=_STOP_GRACE_S)
                        raise self._failed()
                    address = _announced_address(line)
                    if address is not None:
                        return address
                if process.poll() is not None:
                    raise self._failed()

    def _wait_healthy(self, deadline: float) -> None:
        while not self.healthy():
            if not self.running:
                raise self._failed()
            if time.monotonic() >= deadline:
                raise self._not_ready("did not pass its health check")
            time.sleep(0.2)

    def _not_ready(self, what: str) -> LLMUnavailable:
        return LLMUnavailable(
            f"The local LLM server for {self.model_path.name} {what} within "
            f"{self.startup_timeout_s:g}s. The machine may be too busy or short of memory; "
            "see its log, or use PAPERCHAT_LLM=extractive.",
            detail=f"log at {self.log_path}",
        )

    def _failed(self) -> LLMUnavailable:
        code = self._process.returncode if self._process is not None else None
        return LLMUnavailable(
            f"The local LLM server for {self.model_path.name} exited while starting "
            f"(exit code {code}); see its log, or use PAPERCHAT_LLM=extractive.",
            detail=f"last lines of its log ({self.log_path}):\n{self._log_tail()}",
        )

    def _log_tail(self, lines: int = 8) -> str:
        if self.log_path is None:
            return ""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])


WORKER_ENV_NAMES = frozenset(
    {"PATH", "HOME", "USER", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TEMP", "TMP",
     "LD_LIBRARY_PATH", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "SYSTEMROOT",
     "CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES"}
)  # fmt: skip
"""Variables the worker keeps; with `LC_*`, `OMP_*`, `GGML_*` and `LLAMA_*` ones (see below)."""
_WORKER_ENV_PREFIXES = ("LC_", "OMP_", "GGML_", "LLAMA_")


def worker_env(environ: Mapping[str, str]) -> dict[str, str]:
    """Return the environment for the worker: what it needs to run, no keys or tokens.

    The worker loads a model and serves it on 127.0.0.1; it has no use for OPENAI_API_KEY,
    PAPERCHAT_* settings or any other credential, so none is passed on.
    """
    env = {
        name: value
        for name, value in environ.items()
        if name in WORKER_ENV_NAMES or name.startswith(_WORKER_ENV_PREFIXES)
    }
    # llama.cpp's OpenMP threads spin while they wait; on a small or shared CPU the spinning
    # starves the threads doing the work (generation was ~20x slower on a busy 2-core box).
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


def _announced_address(line: str) -> str | None:
    """The address in the worker's `{"address": ...}` line; None for any other output."""
    try:
        message = json.loads(line)
    except ValueError:
        return None
    address = message.get("address") if isinstance(message, dict) else None
    return address if isinstance(address, str) else None


def _terminate(process: subprocess.Popen[str]) -> None:
    """Stop a worker: close its stdin (it exits on EOF), then SIGTERM, then SIGKILL."""
    if process.poll() is None:
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()
        try:
            process.wait(timeout=_STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(timeout=_STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    for stream in (process.stdin, process.stdout):
        if stream is not None and not stream.closed:
            stream.close()
