"""Running the language model: local weights, the llama.cpp server, the OpenAI-compatible client."""
