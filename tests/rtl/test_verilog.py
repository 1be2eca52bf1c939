"""rtl.verilog: the register-enable folding pass and the reset wrapper of the Verilog."""

import re

from amaranth import Module, Signal
from amaranth.back import rtlil
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from rtl.config import HardwareConfig
from rtl.verilog import RESET_LATENCY, fold_register_enables, to_verilog


class _Counter(wiring.Component):
    """``q`` counts ``d + 1`` steps while ``en``; ``z`` clears to 0 when ``d`` is 0."""

    en: In(1)
    d: In(8)
    q: Out(8, init=3)
    z: Out(8)

    def elaborate(self, platform):
        m = Module()
        with m.If(self.en):
            m.d.sync += self.q.eq(self.q + self.d + 1)
        m.d.sync += self.z.eq(0)
        with m.If(self.d != 0):
            m.d.sync += self.z.eq(self.d)
        return m


def _folded():
    return fold_register_enables(rtlil.convert(_Counter(), name="ctr", emit_src=False))


def test_enable_and_reset_fold_into_the_register():
    text = _folded()
    # The enable and Amaranth's reset are in the clocked block, not in a next-state mux.
    assert re.search(r"always @\(posedge clk\)\s+if \(rst\) q <= 8'h03;\s+else if \(en\) q <=",
                     text), text
    assert not re.search(r"assign \S+ = rst \?", text), text
    assert "always @*" not in text


def test_parallel_mux_functions_renamed():
    """Icarus cannot call a function named \\$procmux$N: they are renamed."""
    text = to_verilog(HardwareConfig.tiny())
    assert not re.search(r"function [^;]*\$procmux", text)
    assert re.search(r"zs_pmux_\d+\s*\(", text)


def test_reset_wrapper():
    cfg = HardwareConfig.tiny()
    text = to_verilog(cfg, name="top")
    wrapper = text[text.index("module top("):text.index("endmodule")]
    assert "reg rst_q = 1'h1;" in wrapper
    assert re.search(r"always @\(posedge clk\)\s+rst_q <= rst;", wrapper)
    assert ".rst(rst_q)" in wrapper and "top_core core (" in wrapper
    assert "  input [31:0] cnt_cycles;" not in wrapper
    assert f"  output [{cfg.counter_bits - 1}:0] cnt_cycles;" in wrapper
    assert "  input start;" in wrapper
    assert to_verilog.reset_latency == RESET_LATENCY == 1
    # Without folding: Amaranth's own Verilog, no wrapper.
    plain = to_verilog(cfg, name="top", fold=False)
    assert "rst_q" not in plain and "module top(" in plain
