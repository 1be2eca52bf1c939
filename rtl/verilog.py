"""Verilog for the accelerator, for the HDL simulators (Verilator, Icarus).

Amaranth writes a memory's initial contents word by word, zeros included: for the default
configuration's 2 MiB DRAM model and 2 MiB of weight SRAM that is hundreds of thousands of lines
and minutes of Yosys time. :func:`to_verilog` therefore maps every memory, through Amaranth's
``get_memory`` platform hook, onto a small behavioural Verilog module (zero-initialized by a loop,
non-transparent synchronous read ports with enables, byte-granular write ports) that it appends
to the output. The memory array inside is named ``mem``, so a testbench can reach, say, the DRAM
model's contents as ``dut.dram.mem``.

The Amaranth simulator keeps using Amaranth's own memories; both implement the same port
semantics (tested by running the same programs on both).
"""

from __future__ import annotations

from amaranth import ClockSignal, Module, Shape
from amaranth.back import verilog
from amaranth.hdl import Instance
from amaranth.lib.memory import Memory

from .config import HardwareConfig
from .top import Accelerator

__all__ = ["to_verilog", "TOP_NAME"]

TOP_NAME = "zeroskip_top"


def _memory_module(n_read: int, n_write: int) -> str:
    name = f"zs_mem_r{n_read}_w{n_write}"
    ports = ["input clk"]
    for i in range(n_read):
        ports += [f"input [ABITS-1:0] r{i}_addr", f"input r{i}_en", f"output reg [WIDTH-1:0] r{i}_data"]
    for i in range(n_write):
        ports += [f"input [ABITS-1:0] w{i}_addr", f"input [GRAN-1:0] w{i}_en",
                  f"input [WIDTH-1:0] w{i}_data"]
    body = [f"module {name} #(parameter WIDTH = 8, parameter DEPTH = 16, parameter ABITS = 4, "
            f"parameter GRAN = 1) (", "  " + ",\n  ".join(ports), ");",
            "  localparam GW = WIDTH / GRAN;",
            "  reg [WIDTH-1:0] mem [0:DEPTH-1];",
            "  integer i;",
            "  initial begin",
            "    for (i = 0; i < DEPTH; i = i + 1) mem[i] = {WIDTH{1'b0}};"]
    body += [f"    r{i}_data = {{WIDTH{{1'b0}}}};" for i in range(n_read)]
    body += ["  end"]
    for i in range(n_read):
        body += [f"  always @(posedge clk) if (r{i}_en) r{i}_data <= mem[r{i}_addr];"]
    for i in range(n_write):
        body += [f"  integer g{i};",
                 "  always @(posedge clk)",
                 f"    for (g{i} = 0; g{i} < GRAN; g{i} = g{i} + 1)",
                 f"      if (w{i}_en[g{i}]) mem[w{i}_addr][g{i}*GW +: GW] <= w{i}_data[g{i}*GW +: GW];"]
    body += ["endmodule", ""]
    return "\n".join(body)


class _VerilogPlatform:
    """Just enough of a platform for :func:`amaranth.back.verilog.convert` to call our hook."""

    def __init__(self):
        self.modules: set[tuple[int, int]] = set()

    def get_memory(self, memory: Memory):
        if any(memory.init):
            raise ValueError("memories with initial contents are not supported by rtl.verilog")
        n_read, n_write = len(memory.read_ports), len(memory.write_ports)
        self.modules.add((n_read, n_write))
        width = Shape.cast(memory.shape).width
        abits = max(1, (memory.depth - 1).bit_length())
        kw = dict(p_WIDTH=width, p_DEPTH=memory.depth, p_ABITS=abits,
                  i_clk=ClockSignal("sync"))
        gran = 1
        for i, port in enumerate(memory.read_ports):
            if port.domain != "sync" or port.transparent_for:
                raise ValueError("only non-transparent synchronous read ports are supported")
            kw.update({f"i_r{i}_addr": port.addr, f"i_r{i}_en": port.en, f"o_r{i}_data": port.data})
        for i, port in enumerate(memory.write_ports):
            gran = len(port.en)
            kw.update({f"i_w{i}_addr": port.addr, f"i_w{i}_en": port.en, f"i_w{i}_data": port.data})
        kw["p_GRAN"] = gran
        m = Module()
        m.submodules.mem = Instance(f"zs_mem_r{n_read}_w{n_write}", **kw)
        return m


def to_verilog(cfg: HardwareConfig, *, name: str = TOP_NAME) -> str:
    """Verilog text of :class:`~rtl.top.Accelerator` for ``cfg`` (memory modules included)."""
    platform = _VerilogPlatform()
    text = verilog.convert(Accelerator(cfg), name=name, platform=platform, emit_src=False)
    return text + "\n" + "\n".join(_memory_module(r, w) for r, w in sorted(platform.modules))
