"""Load on the real web server: N concurrent chats (Gradio API) and /v1 requests, on 127.0.0.1.

Usage:
  python bench/bench_load.py --data-dir DIR [--llm extractive|local] [--clients N]
                             [--requests R] [--max-seconds S]

DIR must hold a store (`PAPERCHAT_DATA_DIR=DIR paperchat ingest data/sample`). The script
starts the real `paperchat ui` on a free loopback port with an API token and a page password
(so every request passes the credential gate, as in a secured deployment), waits until
/healthz says ready, then runs N clients at once: half ask through `gradio_client` (`/ask`,
signed in with the password), half through `/v1/chat/completions` (bearer token; every other
request streamed). Each client sends at most R questions and stops at the deadline. Meanwhile
a prober times GET /healthz every 0.25 s. Reported: requests sent, served (a cited answer or an
abstention), errors by kind, answer latency and /healthz latency (p50/p95), and whether
anything was lost: every client thread ends with each request answered or counted as an error
(none hangs), and the store's paper count is the same before and after. The server is stopped
at the end; the exit status is 1 on any error or lost paper.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
PAPERCHAT = Path(sys.executable).parent / "paperchat"
QUESTIONS = [
    "How can a concept be erased from a text-to-image diffusion model?",
    "Which methods make fine-tuning of large pre-trained models parameter-efficient?",
    "Is machine unlearning enough for content regulation in generative AI?",
    "How sensitive is continual learning to its hyperparameters?",
    "What is machine unlearning used for?",
    "Who won the 2018 World Cup?",  # abstains: the cheap path under load
]


@dataclass
class Tally:
    """What the clients saw; shared by threads, guarded by `lock`."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: int = 0
    served: int = 0
    abstained: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latency_s: list[float] = field(default_factory=list)
    health_s: list[float] = field(default_factory=list)
    health_bad: int = 0

    def record(self, ok: bool, seconds: float, abstained: bool = False, error: str = "") -> None:
        with self.lock:
            self.sent += 1
            if ok:
                self.served += 1
                self.abstained += int(abstained)
                self.latency_s.append(seconds)
            else:
                self.errors[error] += 1


def _p(values: list[float], q: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(data_dir: Path, llm: str, token: str, password: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERCHAT_")}
    env.update(
        PAPERCHAT_DATA_DIR=str(data_dir),
        PAPERCHAT_LLM=llm,
        PAPERCHAT_API_TOKEN=token,
        PAPERCHAT_UI_AUTH=f"bench:{password}",
    )
    return env


def _papers(env: dict[str, str]) -> int:
    out = subprocess.run(
        [str(PAPERCHAT), "stats", "--json"], env=env, capture_output=True, text=True, check=True
    )
    return int(json.loads(out.stdout)["papers"])


def _start(env: dict[str, str], port: int, log: Path, timeout_s: float) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(PAPERCHAT), "ui", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"paperchat ui exited; see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.terminate()
    raise SystemExit(f"paperchat ui not ready in {timeout_s:.0f}s; see {log}")


def _v1_client(url: str, token: str, n: int, requests: int, deadline: float, t: Tally) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=300) as client:
        for i in range(requests):
            if time.monotonic() > deadline:
                return
            question = QUESTIONS[(n + i) % len(QUESTIONS)]
            body = {"model": "paperchat", "messages": [{"role": "user", "content": question}]}
            started = time.monotonic()
            try:
                if i % 2:
                    ok, abstained = _v1_streamed(client, body)
                else:
                    reply = client.post("/v1/chat/completions", json=body)
                    reply.raise_for_status()
                    data = reply.json()
                    ok = bool(data["choices"][0]["message"]["content"])
                    abstained = bool(data.get("abstained"))
                t.record(ok, time.monotonic() - started, abstained, "" if ok else "v1 empty")
            except (httpx.HTTPError, KeyError, ValueError) as err:
                t.record(False, 0.0, error=f"v1 {type(err).__name__}")


def _v1_streamed(client: httpx.Client, body: dict[str, Any]) -> tuple[bool, bool]:
    final: dict[str, Any] = {}
    with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as reply:
        reply.raise_for_status()
        for line in reply.iter_lines():
            if line.startswith("data: {"):
                event = json.loads(line[6:])
                if event.get("choices") and event["choices"][0].get("finish_reason") == "stop":
                    final = event
    return bool(final), bool(final.get("abstained"))


def _gradio_client(
    url: str, password: str, n: int, requests: int, deadline: float, t: Tally
) -> None:
    from gradio_client import Client

    try:
        client = Client(url, auth=("bench", password), verbose=False)
    except Exception as err:  # noqa: BLE001 - any failure to connect is one error to report
        t.record(False, 0.0, error=f"gradio connect {type(err).__name__}")
        return
    for i in range(requests):
        if time.monotonic() > deadline:
            return
        question = QUESTIONS[(n + i) % len(QUESTIONS)]
        started = time.monotonic()
        try:
            answer = client.predict(question=question, api_name="/ask")
            ok = isinstance(answer, dict) and "text" in answer
            abstained = bool(answer.get("abstained")) if ok else False
            t.record(ok, time.monotonic() - started, abstained, "" if ok else "gradio shape")
        except Exception as err:  # noqa: BLE001 - the client raises many kinds; count each
            t.record(False, 0.0, error=f"gradio {type(err).__name__}")


def _probe(url: str, stop: threading.Event, t: Tally) -> None:
    while not stop.is_set():
        started = time.monotonic()
        try:
            ok = httpx.get(f"{url}/healthz", timeout=30).status_code == 200
        except httpx.HTTPError:
            ok = False
        with t.lock:
            if ok:
                t.health_s.append(time.monotonic() - started)
            else:
                t.health_bad += 1
        stop.wait(0.25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--llm", choices=["extractive", "local"], default="extractive")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients (N)")
    parser.add_argument("--requests", type=int, default=5, help="questions per client, at most")
    parser.add_argument("--max-seconds", type=float, default=300, help="stop sending after")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = parser.parse_args()

    token, password = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    env = _env(args.data_dir.resolve(), args.llm, token, password)
    papers_before = _papers(env)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = args.data_dir / "bench-load-server.log"
    started_at = time.monotonic()
    server = _start(env, port, log, timeout_s=600)
    startup_s = time.monotonic() - started_at
    tally, stop = Tally(), threading.Event()
    prober = threading.Thread(target=_probe, args=(url, stop, tally), daemon=True)
    deadline = time.monotonic() + args.max_seconds
    workers = [
        threading.Thread(
            target=_gradio_client if n % 2 else _v1_client,
            args=(url, password if n % 2 else token, n, args.requests, deadline, tally),
        )
        for n in range(args.clients)
    ]
    try:
        prober.start()
        load_started = time.monotonic()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        wall_s = time.monotonic() - load_started
    finally:
        stop.set()
        server.terminate()
        server.wait(timeout=60)
    papers_after = _papers(env)
    report = {
        "llm": args.llm,
        "clients": args.clients,
        "requests_per_client": args.requests,
        "startup_s": round(startup_s, 1),
        "wall_s": round(wall_s, 1),
        "sent": tally.sent,
        "served": tally.served,
        "abstained": tally.abstained,
        "errors": dict(tally.errors),
        "answer_s_p50": _round(_p(tally.latency_s, 50)),
        "answer_s_p95": _round(_p(tally.latency_s, 95)),
        "healthz_probes": len(tally.health_s) + tally.health_bad,
        "healthz_failed": tally.health_bad,
        "healthz_ms_p50": _round(_ms(_p(tally.health_s, 50))),
        "healthz_ms_p95": _round(_ms(_p(tally.health_s, 95))),
        "not_sent_by_deadline": args.clients * args.requests - tally.sent,
        "papers_before": papers_before,
        "papers_after": papers_after,
    }
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    raise SystemExit(1 if papers_before != papers_after or tally.errors else 0)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


if __name__ == "__main__":
    main()
