"""Web page (Gradio) and HTTP API (OpenAI-compatible) over the paper store."""
