"""HTTP API: OpenAI-compatible `/v1/chat/completions` and `/v1/models`, plus `/healthz`.

Any OpenAI client can ask the corpus: the model names are `paperchat` (the server's default
backend) and `paperchat-<backend>`. The answer's content is the cited text followed by a
references block; the structured citations come in an extra `citations` field on the message
(non-streaming) or on the final chunk (streaming), beside `edits`: what verification removed
or changed in the model's draft. The last user message is the question; the messages before
it are the conversation.

Who may call it is decided in front of every route by `ui.guard`; here the request is bounded
(`paperchat.limits`), and what goes out is safe: URLs other than http(s) are dropped
(`ui.render.safe_answer`) and errors carry no secret or upstream detail
(`Services.public_message`). Every error is in OpenAI's shape, also for a malformed body.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from paperchat.errors import LimitExceeded, LLMUnavailable, ModelUnavailable, PaperchatError
from paperchat.limits import check_k, check_messages, check_question
from rag.answering.backends import backend_info
from rag.answering.response import AnswerStream
from rag.types import Answer
from ui.render import references_block, safe_answer
from ui.services import Services

MODEL_PREFIX = "paperchat"
REFERENCES_SEPARATOR = "\n\n"


class ApiError(Exception):
    """An error answered in OpenAI's error shape."""

    def __init__(self, status: int, message: str, kind: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.code = code

    def response(self) -> JSONResponse:
        """Return the JSON error response."""
        body = {"error": {"message": self.message, "type": self.kind, "code": self.code}}
        return JSONResponse(body, status_code=self.status)


class ChatMessageIn(BaseModel):
    """One message of the conversation (content as a string or as OpenAI content parts)."""

    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        """Return the message's text (text parts joined)."""
        if isinstance(self.content, list):
            return "".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    """The request body; OpenAI fields paperchat does not use (temperature, ...) are ignored."""

    model_config = ConfigDict(extra="allow")

    model: str = MODEL_PREFIX
    messages: list[ChatMessageIn]
    stream: bool = False
    k: int | None = Field(default=None, description="Papers to retrieve (1 to max_k).")
    year_from: int | None = Field(default=None, description="Earliest publication year.")
    year_to: int | None = Field(default=None, description="Latest publication year.")


def model_ids(services: Services) -> list[str]:
    """Return the model names the API serves."""
    return [MODEL_PREFIX, *(f"{MODEL_PREFIX}-{b}" for b in services.backends)]


def backend_for(model: str, services: Services) -> str:
    """Return the backend a model name selects, or raise a 404 `ApiError`."""
    if model == MODEL_PREFIX:
        return services.default_backend
    prefix = f"{MODEL_PREFIX}-"
    if model.startswith(prefix) and model[len(prefix) :] in services.backends:
        return model[len(prefix) :]
    raise ApiError(
        404,
        f"model {model!r} does not exist; use one of: {', '.join(model_ids(services))}",
        "invalid_request_error",
        "model_not_found",
    )


def split_conversation(messages: list[ChatMessageIn]) -> tuple[str, list[dict[str, str]]]:
    """Return the last user message and the user/assistant turns before it.

    References blocks that paperchat appended to earlier answers are cut off, so they do not
    leak into follow-up rewriting.
    """
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=None)
    if last_user is None or not messages[last_user].text().strip():
        raise ApiError(400, "messages must contain a user message", "invalid_request_error")
    history: list[dict[str, str]] = []
    for message in messages[:last_user]:
        if message.role not in ("user", "assistant"):
            continue
        text = message.text()
        if message.role == "assistant":
            text = text.split(REFERENCES_SEPARATOR + "References:", 1)[0]
        history.append({"role": message.role, "content": text})
    return messages[last_user].text().strip(), history


def citations_json(answer: Answer) -> list[dict[str, Any]]:
    """Return the answer's citations as JSON objects."""
    return [c.model_dump(mode="json") for c in answer.citations]


def edits_json(answer: Answer) -> list[dict[str, Any]]:
    """Return what verification changed in the model's draft, as JSON objects."""
    return [e.model_dump(mode="json") for e in answer.edits]


def references_text(answer: Answer) -> str:
    """Return what follows the answer text in the content: the references block, if any."""
    block = references_block(answer.citations)
    return REFERENCES_SEPARATOR + block if block else ""


class Completion:
    """Shapes one answer as OpenAI chat-completion JSON."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())

    def whole(self, answer: Answer) -> dict[str, Any]:
        """Return the non-streaming response body."""
        usage = answer.usage
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": answer.text + references_text(answer),
                        "citations": citations_json(answer),
                        "edits": edits_json(answer),
                    },
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.prompt_tokens + usage.completion_tokens,
            },
            "abstained": answer.abstained,
        }

    def chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        """Return one SSE event carrying a `chat.completion.chunk`."""
        body = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(body)}\n\n"

    def stream(
        self, first: str | None, rest: Iterator[str], response: AnswerStream, services: Services
    ) -> Iterator[str]:
        """Yield SSE events: role, text pieces, references, a final chunk with citations.

        `first` is the piece already read (to raise errors before the response starts).
        When an abstention replaces text that already streamed, its text follows it.
        """
        yield self.chunk({"role": "assistant", "content": ""})
        try:
            if first:
                yield self.chunk({"content": first})
            for piece in rest:
                yield self.chunk({"content": piece})
            answer = response.answer
        except PaperchatError as err:
            yield _sse_error(services.public_message(err))
            return
        answer = safe_answer(answer)
        if not response.streamed:
            yield self.chunk({"content": answer.text})
        elif response.replaced:
            yield self.chunk({"content": "\n\n" + answer.text})
        references = references_text(answer)
        if references:
            yield self.chunk({"content": references})
        cites = citations_json(answer)
        yield self.chunk(
            {"citations": cites},
            "stop",
            citations=cites,
            edits=edits_json(answer),
            abstained=answer.abstained,
        )
        yield "data: [DONE]\n\n"


def _sse_error(message: str) -> str:
    return f"data: {json.dumps({'error': {'message': message, 'type': 'server_error'}})}\n\n"


def build_api(services: Services) -> FastAPI:
    """Return the FastAPI app with /v1/* and /healthz (Gradio is mounted on it separately)."""
    app = FastAPI(
        title="paperchat", docs_url="/v1/docs", openapi_url="/v1/openapi.json", redoc_url=None
    )

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, err: ApiError) -> JSONResponse:
        return err.response()

    @app.exception_handler(RequestValidationError)
    async def _bad_body(request: Request, err: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'body'}: {e.get('msg', '')}"
            for e in err.errors()[:5]
        )
        return ApiError(400, f"invalid request: {problems}", "invalid_request_error").response()

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        status, body = services.health()
        return JSONResponse(body, status_code=status)

    router = APIRouter(prefix="/v1")

    @router.get("/models")
    def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {"id": name, "object": "model", "created": 0, "owned_by": "paperchat"}
                for name in model_ids(services)
            ],
        }

    @router.post("/chat/completions", response_model=None)
    def chat_completions(body: ChatRequest) -> JSONResponse | StreamingResponse:
        return _complete(services, body)

    app.include_router(router)
    return app


def _checked(services: Services, body: ChatRequest) -> tuple[str, list[dict[str, str]], int | None]:
    """Return (question, history, k) of a request within bounds, or raise a 400 `ApiError`."""
    try:
        check_messages(len(body.messages), services.settings)
        question, history = split_conversation(body.messages)
        return (
            check_question(question, services.settings),
            history,
            check_k(body.k, services.settings),
        )
    except LimitExceeded as err:
        raise ApiError(400, str(err), "invalid_request_error", "limit_exceeded") from err


def _complete(services: Services, body: ChatRequest) -> JSONResponse | StreamingResponse:
    backend = backend_for(body.model, services)
    question, history, k = _checked(services, body)
    if not services.wait_ready(0) or services.state != "ready":
        raise ApiError(503, services.message, "server_error", "not_ready")
    completion = Completion(body.model)
    try:
        response = services.assistant(backend).stream(
            question,
            history=history or None,
            k=k,
            year_from=body.year_from,
            year_to=body.year_to,
        )
        pieces = iter(response)
        first = next(pieces, None)  # retrieval and the first sentence: errors get a status
        if not body.stream:
            return JSONResponse(completion.whole(safe_answer(response.answer)))
    except (LLMUnavailable, ModelUnavailable) as err:
        fallback = getattr(err, "fallback", None) or backend_info(backend).fallback
        offer = f" (model '{MODEL_PREFIX}-{fallback}' answers without an LLM)" if fallback else ""
        raise ApiError(
            503, f"{services.public_message(err)}{offer}", "server_error", "llm_unavailable"
        ) from err
    except PaperchatError as err:
        raise ApiError(400, services.public_message(err), "invalid_request_error") from err
    return StreamingResponse(
        completion.stream(first, pieces, response, services),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
