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
