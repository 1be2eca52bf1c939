"""rtl.bits against naive Python, exhaustively or on random values, in the Amaranth simulator."""

import random

import pytest
from amaranth import Module, Signal
from amaranth.sim import Simulator

from rtl.bits import field_select, lowest_set_index, nonzero_bitmap, popcount


def _eval(build, inputs, widths):
    """Drive ``inputs`` (list of tuples) into signals of ``widths``; return the outputs."""
    m = Module()
    ins = [Signal(w, name=f"i{n}") for n, w in enumerate(widths)]
    out = build(m, *ins)
    o = Signal(len(out))
    m.d.comb += o.eq(out)
    got = []

    async def tb(ctx):
        for vals in inputs:
            for s, v in zip(ins, vals):
                ctx.set(s, v)
            got.append(ctx.get(o))

    sim = Simulator(m)
    sim.add_testbench(tb)
    sim.run()
    return got


@pytest.mark.parametrize("width", [1, 5, 8, 64])
def test_popcount(width):
    rng = random.Random(width)
    vals = [(rng.getrandbits(width),) for _ in range(200)] + [(0,), ((1 << width) - 1,)]
    got = _eval(lambda m, x: popcount(x, width), vals, [width])
    assert got == [bin(v).count("1") for (v,) in vals]


@pytest.mark.parametrize("width", [1, 2, 7, 8, 64])
def test_lowest_set_index(width):
    rng = random.Random(width)
    vals = [(rng.getrandbits(width) << rng.randrange(width) & ((1 << width) - 1),)
            for _ in range(300)] + [(0,), (1 << (width - 1),)]
    got = _eval(lambda m, x: lowest_set_index(m, x, width), vals, [width])
    none = (1 << max(1, (width - 1).bit_length())) - 1
    assert got == [((v & -v).bit_length() - 1) if v else none for (v,) in vals]


@pytest.mark.parametrize("field_bits,count", [(4, 64), (8, 64), (8, 8), (4, 17), (8, 3)])
def test_field_select(field_bits, count):
    rng = random.Random(count)
    ib = max(1, (count - 1).bit_length())
    vals = [(rng.getrandbits(field_bits * count), rng.randrange(count)) for _ in range(300)]
    got = _eval(lambda m, v, i: field_select(m, v, i, field_bits, count), vals,
                [field_bits * count, ib])
    assert got == [(v >> (i * field_bits)) & ((1 << field_bits) - 1) for v, i in vals]


@pytest.mark.parametrize("field_bits,count", [(4, 64), (8, 64), (8, 8), (1, 5)])
def test_nonzero_bitmap(field_bits, count):
    rng = random.Random(field_bits * count)
    mask = (1 << field_bits) - 1

    def sparse():  # about half the fields zero
        return sum((rng.getrandbits(field_bits) if rng.random() < 0.5 else 0) << (k * field_bits)
                   for k in range(count))

    vals = [(sparse(),) for _ in range(200)] + [(0,), ((1 << field_bits * count) - 1,)]
    got = _eval(lambda m, v: nonzero_bitmap(v, field_bits, count), vals, [field_bits * count])
    assert got == [sum(1 << k for k in range(count) if (v >> (k * field_bits)) & mask)
                   for (v,) in vals]


def test_nonzero_bitmap_checks():
    with pytest.raises(ValueError, match="must be positive"):
        nonzero_bitmap(Signal(8), 0, 8)
