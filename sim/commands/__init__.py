"""Subcommands of ``zeroskip`` kept in their own modules; each exposes ``register(subparsers)``."""
