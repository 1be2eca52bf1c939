"""What zeroskip computes: the speech model, its training and the integer reference arithmetic.

This package imports nothing from ``rtl``, ``compiler`` or ``sim``.
"""
