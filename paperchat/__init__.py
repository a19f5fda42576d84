"""paperchat: cited answers over scientific paper abstracts. Shared settings, errors and CLI."""

__version__ = "0.1.0"
