"""Bit-manipulation building blocks shared by the lanes and the decompressor.

Each function is the same hardware function as its textbook form, written so that a compiled
simulator evaluates it cheaply. Verilator turns every operator into C++ on 32/64-bit machine
words and evaluates all combinational logic on every clock edge, busy or not; Amaranth lowers
bit-level wiring (constant masks, concatenations of single bits) to per-bit C++. So
:func:`lowest_set_index` is a binary search over contiguous halves (a few word-wide compares
and muxes) instead of an OR of selected bits per index bit, and :func:`field_select` muxes one
machine word (a tree of 2-way muxes on the chunk index, no array of chunks) before shifting
inside it instead of shifting a whole 256- or 512-bit word.
Measured figures are in :mod:`sim.build`'s "Decisions".

Dimension letters: ``W`` width of a value in bits, ``F`` bits per field, ``N`` fields.
"""

from __future__ import annotations

from amaranth import Cat, Const, Mux, Signal

__all__ = ["popcount", "lowest_set_index", "field_select", "nonzero_bitmap", "tree_sum", "tree_or",
           "NATIVE_BITS"]

#: Widest value a simulator handles as one machine word; :func:`field_select` muxes chunks
#: of this width before shifting inside one.
NATIVE_BITS = 64


def tree_sum(values):
    """Balanced adder tree over a list of Amaranth values (shallower than Python's ``sum``)."""
    values = list(values)
    if not values:
        return Const(0, 1)
    while len(values) > 1:
        nxt = [values[i] + values[i + 1] for i in range(0, len(values) - 1, 2)]
        if len(values) % 2:
            nxt.append(values[-1])
        values = nxt
    return values[0]


def tree_or(values):
    """Balanced OR tree over a non-empty list of Amaranth values."""
    values = list(values)
    while len(values) > 1:
        nxt = [values[i] | values[i + 1] for i in range(0, len(values) - 1, 2)]
        if len(values) % 2:
            nxt.append(values[-1])
        values = nxt
    return values[0]


def popcount(value, width: int):
    """Number of set bits among ``value[:width]``: a balanced adder tree of its bits."""
    if width < 1:
        raise ValueError(f"width must be positive, not {width}")
    return tree_sum(value[i] for i in range(width))


def lowest_set_index(m, value, width: int, *, name: str = "ctz"):
    """Index of the lowest set bit of ``value[:width]`` (count of trailing zeros), by binary
    search; all ones (``2**ceil(log2(W)) - 1``) when no bit is set.

    Step ``i`` (index bit ``b = log2(W)-1-i``) tests whether the low half of the remaining
    window is all zero; if so the set bit is in the high half, which becomes the window. That
    is ``log2(W)`` comparators and muxes of shrinking width, the usual leading/trailing-zero
    counter. The obvious form, index bit ``b`` = OR of the bits whose index has bit ``b`` set,
    is the same function but a simulator evaluates it one bit at a time (Amaranth lowers the
    masks to per-bit wiring), ~20x the work for ``W = 64``. Adds the window signals to
    ``m.d.comb``; returns a ``max(1, ceil(log2(W)))``-bit value.
    """
    bits = max(1, (width - 1).bit_length())
    padded = 1 << bits
    window = Signal(padded, name=f"{name}_w{bits}")
    m.d.comb += window.eq(value[:width])
    idx = []
    for b in reversed(range(bits)):
        half = 1 << b
        high = Signal(name=f"{name}_b{b}")
        m.d.comb += high.eq(window[:half] == 0)
        nxt = Signal(half, name=f"{name}_w{b}")
        m.d.comb += nxt.eq(Mux(high, window[half:], window[:half]))
        idx.append(high)
        window = nxt
    return Cat(*reversed(idx))


def field_select(m, value, index, field_bits: int, count: int, *, name: str = "fsel"):
    """``value.word_select(index, field_bits)`` over ``count`` fields, as a two-level mux.

    The fields are grouped into :data:`NATIVE_BITS`-wide chunks; the high bits of ``index``
    pick a chunk (a ``count*field_bits/NATIVE_BITS``-way mux) and the low bits a field inside
    it. Same function and the same mux tree as one ``count``-way mux, but a simulator never
    shifts the whole (possibly hundreds of bits wide) value. Adds the chunk signal to
    ``m.d.comb``; returns an unsigned ``field_bits``-wide value.
    """
    per_chunk = max(1, NATIVE_BITS // field_bits)
    if count <= per_chunk:
        return value.word_select(index, field_bits)
    lo = (per_chunk - 1).bit_length()
    n_chunks = -(-count // per_chunk)
    chunk_bits = per_chunk * field_bits
    chunks = [value[i * chunk_bits:(i + 1) * chunk_bits] for i in range(n_chunks)]
    # A balanced tree of 2-way muxes on the chunk index bits, not an ``Array``: a compiled
    # simulator evaluates a few machine-word selects instead of copying every chunk into a
    # temporary array first.
    hi_bits = max(1, (n_chunks - 1).bit_length())
    sel = index[lo:lo + hi_bits]
    level = chunks
    for b in range(hi_bits):
        nxt = []
        for j in range(0, len(level), 2):
            nxt.append(Mux(sel[b], level[j + 1], level[j]) if j + 1 < len(level) else level[j])
        level = nxt
    chunk = Signal(chunk_bits, name=f"{name}_chunk")
    m.d.comb += chunk.eq(level[0])
    return chunk.word_select(index[:lo], field_bits) if lo else chunk


def nonzero_bitmap(value, field_bits: int, count: int):
    """``count``-bit value whose bit ``k`` is set when field ``k`` of ``value`` (bits
    ``[k*F, (k+1)*F)``) is nonzero: the zero detection of a dense SRAM word.

    ``K`` comparators: used where a word is *written* (the decompressor, the host and result
    paths of the activation SRAM) so that the lanes read the bitmap beside the word instead of
    recomputing it every cycle.
    """
    if field_bits < 1 or count < 1:
        raise ValueError(f"field_bits and count must be positive, not {field_bits}, {count}")
    return Cat(*[value[k * field_bits:(k + 1) * field_bits] != 0 for k in range(count)])
