"""Lowers quantized sparse layers onto a :class:`rtl.config.HardwareConfig`: compressed weight
streams, per-row parameter records, balanced row placement and programs, packed into an
:class:`rtl.memfmt.MemoryImage`.

Imports ``model`` and the contract modules of ``rtl`` (``rtl.config``, ``rtl.isa``,
``rtl.memfmt``) only.
"""
