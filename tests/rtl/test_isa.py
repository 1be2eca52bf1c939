"""Instruction encoding: round trip and range checks."""

import pytest
from hypothesis import given, strategies as st

from rtl import isa
from rtl.config import HardwareConfig

CFGS = [HardwareConfig.tiny(), HardwareConfig.default()]


@pytest.mark.parametrize("cfg", CFGS, ids=["tiny", "default"])
def test_layout_width_follows_config(cfg):
    lay = isa.instruction_layout(cfg)
    assert lay.size == 8 + max(isa.load_layout(cfg).size, isa.matvec_layout(cfg).size)
    assert isa.instr_bytes(cfg) == (lay.size + 7) // 8


@given(st.data())
def test_round_trip(data):
    cfg = data.draw(st.sampled_from(CFGS))
    f = {name: data.draw(st.integers(0, (1 << field.width) - 1))
         for name, field in isa.matvec_layout(cfg)}
    dense = data.draw(st.booleans())
    word = isa.matvec(cfg, dense=dense, **f)
    assert isa.decode(cfg, word) == {"op": isa.Op.MATVEC, "flags": int(dense), **f}
    words = [word, isa.end(cfg)]
    assert isa.program_words(cfg, isa.program_bytes(cfg, words)) == words


def test_range_checked():
    cfg = HardwareConfig.tiny()
    with pytest.raises(isa.ISAError, match="n_rows=.* does not fit"):
        isa.matvec(cfg, w_base=0, p_base=0, n_rows=1 << 20, n_words=1, in_base=0, out_base=0)
    with pytest.raises(isa.ISAError, match="needs fields"):
        isa.encode(cfg, isa.Op.LOAD, dram_addr=0)
    with pytest.raises(isa.ISAError, match="whole number"):
        isa.program_words(cfg, b"\x00" * (isa.instr_bytes(cfg) + 1))


# -- the RNN-T instructions (issue 4) ---------------------------------------------------------

VECTOR_OPS = {
    isa.Op.VADD: (isa.vadd, ("dst", "a", "b", "n"), 0),
    isa.Op.VMUL: (isa.vmul, ("dst", "a", "b", "n", "shift"), 0),
    isa.Op.LUT: (isa.lut, ("dst", "a", "n"), isa.LutFlags.TANH),
    isa.Op.CELL: (isa.cell, ("dst", "a", "b", "n"), 0),
    isa.Op.MOVE: (isa.move, ("dst", "a", "n"), isa.MoveFlags.INDEXED),
}


def _fields(cfg, names):
    lay = isa.vector_layout(cfg)
    return {n: lay[n].width for n in names}


@pytest.mark.parametrize("cfg", CFGS, ids=["tiny", "default"])
def test_new_members_keep_the_instruction_width(cfg):
    """The vector members fit in LOAD's / MATVEC's width, so END/LOAD/MATVEC words (and the
    instruction width) are what they were before the RNN-T instructions."""
    assert isa.vector_layout(cfg).size <= max(isa.load_layout(cfg).size,
                                              isa.matvec_layout(cfg).size)
    assert isa.instruction_layout(cfg).size == 8 + max(isa.load_layout(cfg).size,
                                                       isa.matvec_layout(cfg).size)


def test_old_encodings_unchanged():
    cfg = HardwareConfig.tiny()
    assert isa.end(cfg) == 0
    # tiny: args at bit 8; LOAD dram_addr 10, dram_len 11, count 7, dest 6 bits;
    # MATVEC w_base 6, p_base 5, n_rows 6, n_words 7, in_base 4, out_base 4 bits
    assert isa.load(cfg, dram_addr=3, dram_len=5, count=7, dest=2) == \
        1 | (3 << 8) | (5 << 18) | (7 << 29) | (2 << 36)
    assert isa.load(cfg, dram_addr=0, dram_len=0, count=0, dest=0, params=True) == 1 | (1 << 4)
    assert isa.matvec(cfg, w_base=1, p_base=2, n_rows=3, n_words=4, in_base=5, out_base=6,
                      dense=True) == \
        2 | (1 << 4) | (1 << 8) | (2 << 14) | (3 << 19) | (4 << 25) | (5 << 32) | (6 << 36)


@pytest.mark.parametrize("cfg", CFGS, ids=["tiny", "default"])
def test_vector_fields_share_positions(cfg):
    """Every vector member names its fields at the positions of :func:`isa.vector_layout`."""
    common = isa.vector_layout(cfg)
    args = isa.instruction_layout(cfg)["args"].shape
    for op, (_, names, _) in VECTOR_OPS.items():
        member = args[op.name.lower()].shape
        assert {n for n, _ in member} == set(names)
        for n, f in member:
            assert (f.offset, f.width) == (common[n].offset, common[n].width)


@given(st.data())
def test_vector_round_trip(data):
    cfg = data.draw(st.sampled_from(CFGS))
    op = data.draw(st.sampled_from(sorted(VECTOR_OPS, key=lambda o: o.value)))
    fn, names, flag = VECTOR_OPS[op]
    common = isa.vector_layout(cfg)
    f = {n: data.draw(st.integers(0, (1 << common[n].width) - 1)) for n in names}
    flagged = data.draw(st.booleans()) and flag != 0
    kw = dict(f)
    if op == isa.Op.LUT:
        kw["table"] = int(flagged)
    elif op == isa.Op.MOVE:
        kw["indexed"] = flagged
    word = fn(cfg, **kw)
    assert isa.decode(cfg, word) == {"op": op, "flags": flag if flagged else 0, **f}
    assert isa.encode(cfg, op, flag if flagged else 0, **f) == word
    assert isa.program_words(cfg, isa.program_bytes(cfg, [word])) == [word]
    assert isa.disassemble(cfg, word).split()[0].split(".")[0] == op.name


@given(st.data())
def test_load_lut_round_trip(data):
    cfg = data.draw(st.sampled_from(CFGS))
    f = {name: data.draw(st.integers(0, (1 << field.width) - 1))
         for name, field in isa.load_layout(cfg)}
    word = isa.load(cfg, lut=True, **f)
    assert isa.decode(cfg, word) == {"op": isa.Op.LOAD, "flags": isa.LoadFlags.LUT, **f}
    assert isa.disassemble(cfg, word).startswith("LOAD.LUT ")


@pytest.mark.parametrize("op", sorted(VECTOR_OPS, key=lambda o: o.value), ids=lambda o: o.name)
@pytest.mark.parametrize("field", ["dst", "a", "b", "n", "shift"])
def test_vector_range_errors_name_the_field(op, field):
    cfg = HardwareConfig.tiny()
    fn, names, _ = VECTOR_OPS[op]
    if field not in names:
        return
    kw = {n: 0 for n in names}
    width = _fields(cfg, [field])[field]
    kw[field] = 1 << width
    if op == isa.Op.LUT:
        kw["table"] = 0
    with pytest.raises(isa.ISAError, match=rf"{op.name}\.{field}={1 << width} does not fit "
                                           rf"{width} bits"):
        fn(cfg, **kw)
    kw[field] = -1
    with pytest.raises(isa.ISAError, match=rf"{op.name}\.{field}=-1 does not fit"):
        fn(cfg, **kw)


def test_vmul_shift_is_four_bits():
    cfg = HardwareConfig.default()
    isa.vmul(cfg, dst=0, a=0, b=0, n=1, shift=isa.VMUL_MAX_SHIFT)
    with pytest.raises(isa.ISAError, match=r"VMUL\.shift=16 does not fit 4 bits"):
        isa.vmul(cfg, dst=0, a=0, b=0, n=1, shift=16)


def test_flags_checked_per_op():
    cfg = HardwareConfig.tiny()
    with pytest.raises(isa.ISAError, match=r"VADD\.flags=0x1: bit\(s\) 0x1 are not defined"):
        isa.encode(cfg, isa.Op.VADD, 1, dst=0, a=0, b=0, n=1)
    with pytest.raises(isa.ISAError, match=r"CELL\.flags=0x2"):
        isa.encode(cfg, isa.Op.CELL, 2, dst=0, a=0, b=0, n=1)
    with pytest.raises(isa.ISAError, match="PARAMS and LUT are exclusive"):
        isa.load(cfg, dram_addr=0, dram_len=1, count=1, dest=0, params=True, lut=True)
    with pytest.raises(isa.ISAError, match=r"LUT\.table=2"):
        isa.lut(cfg, dst=0, a=0, n=1, table=2)
    with pytest.raises(isa.ISAError, match=r"MOVE needs fields \['a', 'dst', 'n'\]"):
        isa.encode(cfg, isa.Op.MOVE, dst=0, a=0, b=0, n=1)
    with pytest.raises(isa.ISAError, match="flags=16 does not fit 4 bits"):
        isa.encode(cfg, isa.Op.END, 16)


def test_unknown_opcode_refused_by_decode():
    cfg = HardwareConfig.tiny()
    with pytest.raises(isa.ISAError, match="unknown opcode 9"):
        isa.decode(cfg, 9)


def test_lut_memory_constants():
    assert isa.LUT_ROWS * isa.LUT_ROW_BYTES == isa.LUT_TABLES * isa.LUT_ENTRIES == 512
    assert {isa.LUT_SIGMOID, isa.LUT_TANH} == {0, 1}
