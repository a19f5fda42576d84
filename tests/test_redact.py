"""Secrets never reach a message: URL passwords, tokens, keys; upstream bodies stay server-side."""

from __future__ import annotations

import logging

import httpx
import openai
from pydantic import SecretStr

from paperchat.errors import LLMUnavailable
from paperchat.redact import (
    RedactingFilter,
    display_url,
    public_message,
    redact,
    secret_values,
)
from paperchat.settings import Settings
from rag.models.faults import translate_error
from rag.models.server import worker_env


def test_url_password_is_masked_but_user_and_host_stay() -> None:
    text = "Could not reach http://ann:hunter2@10.0.0.5:8000/v1: refused"

    assert redact(text) == "Could not reach http://ann:***@10.0.0.5:8000/v1: refused"


def test_token_only_userinfo_bearer_keys_and_query_secrets_are_masked() -> None:
    text = (
        "https://ghp_abcdefghijkl@host/x Authorization: Bearer abc.def-123456 "
        "key sk-proj-0123456789abcdef at https://h/v1?api_key=zzz&x=1"
    )

    masked = redact(text)

    for secret in ("ghp_abcdefghijkl", "abc.def-123456", "sk-proj-0123456789abcdef", "zzz"):
        assert secret not in masked
    assert "x=1" in masked and "https://h/v1" in masked


def test_known_secret_values_are_masked_wherever_they_appear() -> None:
    assert redact("the token is plain-token-42.", ["plain-token-42"]) == "the token is ***."
    assert redact("short abc stays", ["abc"]) == "short abc stays"  # too short to search


def test_display_url_drops_the_userinfo() -> None:
    assert display_url("http://ann:pw@127.0.0.1:9/v1") == "http://127.0.0.1:9/v1"
    assert display_url("https://api.example/v1") == "https://api.example/v1"


def test_secret_values_lists_every_secret_setting(settings: Settings) -> None:
    configured = settings.model_copy(
        update={
            "api_token": SecretStr("tok-123"),
            "openai_api_key": SecretStr("sk-key-123456"),
            "ui_auth": "ann:page-pw",
            "llm_base_url": "http://u:llm-pw@127.0.0.1:1/v1",
            "chroma_url": "http://u:chroma-pw@127.0.0.1:2",
        }
    )

    assert sorted(secret_values(configured)) == sorted(
        ["tok-123", "sk-key-123456", "page-pw", "llm-pw", "chroma-pw"]
    )


def _status_error(status: int, message: str) -> openai.APIStatusError:
    request = httpx.Request("POST", "http://u:pw@127.0.0.1:1/v1/chat/completions")
    response = httpx.Response(status, json={"error": {"message": message}}, request=request)
    return openai.APIStatusError(message, response=response, body={"error": {"message": message}})


def test_llm_failure_keeps_the_upstream_body_out_of_the_public_message() -> None:
    err = translate_error(
        _status_error(500, "trace at /srv/secret.py"),
        where="the OpenAI-compatible server at http://ann:hunter2@127.0.0.1:1/v1",
    )

    assert "hunter2" not in str(err)
    assert "trace at /srv/secret.py" in str(err)  # the operator (CLI) still sees it
    assert "trace at /srv/secret.py" not in err.public
    assert "HTTP 500" in err.public
    assert public_message(err) == err.public


def test_connection_error_text_is_redacted() -> None:
    cause = httpx.ConnectError("cannot connect to http://ann:hunter2@127.0.0.1:9/v1")
    exc = openai.APIConnectionError(request=httpx.Request("POST", "http://127.0.0.1:9"))
    exc.__cause__ = cause

    err = translate_error(exc, where="the server")

    assert "hunter2" not in str(err) and "127.0.0.1:9" in str(err)


def test_public_message_of_other_errors_is_redacted_with_known_secrets() -> None:
    assert public_message(RuntimeError("store at http://x:y@h failed, tok-999"), ["tok-999"]) == (
        "store at http://x:***@h failed, ***"
    )
    assert public_message(LLMUnavailable("down", detail="body")) == "down"


def test_log_filter_redacts_messages_and_tracebacks() -> None:
    try:
        raise RuntimeError("boom at http://ann:hunter2@h/v1 with tok-secret-1")
    except RuntimeError:
        import sys

        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "failed %s", ("tok-secret-1",), sys.exc_info()
        )

    RedactingFilter(["tok-secret-1"]).filter(record)
    written = logging.Formatter().format(record)

    assert "hunter2" not in written and "tok-secret-1" not in written
    assert "RuntimeError" in written  # the traceback is still there


def test_worker_environment_keeps_what_it_needs_and_no_secret() -> None:
    env = worker_env(
        {
            "PATH": "/bin",
            "HOME": "/root",
            "LC_ALL": "C.UTF-8",
            "OMP_NUM_THREADS": "2",
            "OPENAI_API_KEY": "sk-x",
            "PAPERCHAT_API_TOKEN": "t",
            "HF_TOKEN": "h",
            "MY_SERVICE_PASSWORD": "p",
        }
    )

    assert env == {
        "PATH": "/bin",
        "HOME": "/root",
        "LC_ALL": "C.UTF-8",
        "OMP_NUM_THREADS": "2",
        "OMP_WAIT_POLICY": "PASSIVE",
    }
