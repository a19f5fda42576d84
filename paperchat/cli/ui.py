"""`paperchat ui`: the chat page and the OpenAI-compatible HTTP API on one port."""

from __future__ import annotations

import typer

from paperchat.cli.options import LLMOption, load_settings


def register(app: typer.Typer) -> None:
    """Add this area's subcommands to the root app."""
    app.command("ui")(ui)


def ui(
    host: str = typer.Option(
        None,
        "--host",
        help="Address to bind (default PAPERCHAT_UI_HOST or 127.0.0.1). Any non-local "
        "address needs PAPERCHAT_UI_AUTH=user:password or PAPERCHAT_API_TOKEN, or --insecure.",
    ),
    port: int = typer.Option(
        None, "--port", help="Port to bind (default PAPERCHAT_UI_PORT or 7860)."
    ),
    insecure: bool = typer.Option(
        False,
        "--insecure",
        help="Allow a non-local bind with no credential at all: anyone who can reach the "
        "port can read, ask and upload (only on a network you trust).",
    ),
    llm: LLMOption = None,
) -> None:
    """Chat with the papers in the browser at http://127.0.0.1:7860, and ask them over HTTP.

    The same port serves OpenAI-compatible POST /v1/chat/completions (model "paperchat").

    GET /v1/models lists the models; GET /healthz says when the server is ready.

    With PAPERCHAT_UI_AUTH or PAPERCHAT_API_TOKEN set, every route but /healthz needs one:
    the page signs in at /login; API clients send "Authorization: Bearer <token>".

    Start-up loads the index and the model before the first answer; the page says so meanwhile.

    Usage examples:

      paperchat ui

      paperchat ui --llm extractive --port 8080

      PAPERCHAT_UI_AUTH=ann:secret PAPERCHAT_API_TOKEN=tok paperchat ui --host 0.0.0.0

    --llm sets the default backend; the page can switch per question.

    Exit status: 0 stopped, 2 refused (non-local bind without credentials, a bad setting or
    usage error; see `paperchat --help`).
    """
    from ui.access import access_for

    settings = load_settings(llm)
    bind_host = host or settings.ui_host
    bind_port = port or settings.ui_port
    access = access_for(bind_host, settings, insecure=insecure)
    from ui.server import serve
    from ui.wiring import real_services

    services = real_services(settings)
    typer.echo(
        f"paperchat: serving http://{bind_host}:{bind_port} (preparing the model and the index "
        "in the background; the page shows progress)",
        err=True,
    )
    try:
        serve(services, bind_host, bind_port, access)
    finally:
        services.close()
