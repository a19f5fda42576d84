"""Child process that serves one GGUF with xllamacpp's OpenAI-compatible HTTP server.

`rag.models.server.LocalLLMServer` runs this file by path (`python worker.py ...`), so it
imports only the standard library and `xllamacpp`: no paperchat package, no LlamaIndex, and
therefore a fast start. llama.cpp's log lines go to the child's stderr, which the parent sends to
a log file instead of the user's terminal.

Protocol: once the model is loaded and the server listens, the child prints one JSON line
`{"address": "http://127.0.0.1:PORT"}` on stdout. It serves until SIGTERM/SIGINT or until its
stdin reaches end-of-file (the parent closed it or died), then shuts the server down and exits 0.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from types import FrameType


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="GGUF file to serve.")
    parser.add_argument("--alias", required=True, help="Model name reported by /v1/models.")
    parser.add_argument("--host", default="127.0.0.1", help="Address to bind.")
    parser.add_argument("--port", type=int, default=0, help="Port; 0 picks a free one.")
    parser.add_argument("--threads", type=int, required=True, help="CPU threads.")
    parser.add_argument("--ctx", type=int, required=True, help="Context window in tokens.")
    return parser.parse_args(argv)


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: list[str]) -> int:
    """Load the model, announce the address, serve until told to stop."""
    args = _parse(argv)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)

    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.model_alias = {args.alias}
    params.hostnames = [args.host]
    params.port = args.port
    params.n_ctx = args.ctx
    params.n_parallel = 1  # one slot: on a few CPU cores, requests are better queued than split
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    server = xllamacpp.Server(params)  # returns once the model is loaded and the port listens
    try:
        print(json.dumps({"address": server.listening_address}), flush=True)
        sys.stdin.read()  # blocks until the parent closes our stdin or exits
    finally:
        del server  # xllamacpp stops the HTTP server and frees the model on deallocation
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
