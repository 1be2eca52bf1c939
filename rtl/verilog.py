"""Verilog for the accelerator, for the HDL simulators (Verilator, Icarus).

Amaranth writes a memory's initial contents word by word, zeros included: for the default
configuration's 2 MiB DRAM model and 2 MiB of weight SRAM that is hundreds of thousands of lines
and minutes of Yosys time. :func:`to_verilog` therefore maps every memory, through Amaranth's
``get_memory`` platform hook, onto a small behavioural Verilog module (zero-initialized by a loop,
non-transparent synchronous read ports with enables, byte-granular write ports that test their
enables once before looping over the granules, so an idle port costs a compiled simulator one
comparison per cycle) that it appends to the output. The memory array inside is named ``mem``, so a testbench can reach, say, the DRAM
model's contents as ``dut.dram.mem``.

The Amaranth simulator keeps using Amaranth's own memories; both implement the same port
semantics (tested by running the same programs on both).
"""

from __future__ import annotations

import re

from amaranth import ClockSignal, Module, Shape
from amaranth.back import verilog
from amaranth.hdl import Instance
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In

from .config import HardwareConfig
from .top import Accelerator

__all__ = ["to_verilog", "fold_register_enables", "TOP_NAME", "RESET_LATENCY", "DRAM_READMEM_PORT",
           "DRAM_READMEM_PLUSARG", "DRAM_ARRAY"]

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
                 f"    if (w{i}_en == {{GRAN{{1'b1}}}}) mem[w{i}_addr] <= w{i}_data;",
                 f"    else if (w{i}_en != {{GRAN{{1'b0}}}})",
                 f"      for (g{i} = 0; g{i} < GRAN; g{i} = g{i} + 1)",
                 f"        if (w{i}_en[g{i}]) mem[w{i}_addr][g{i}*GW +: GW] <= w{i}_data[g{i}*GW +: GW];"]
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


#: Yosys passes of :func:`fold_register_enables`.
FOLD_PASSES = ("proc -norom", "opt_clean", "opt_dff", "opt_clean")

#: Rising edges from the wrapper's ``rst`` to the core's reset (see :func:`to_verilog`).
RESET_LATENCY = 1


def fold_register_enables(rtlil_text: str) -> str:
    r"""Verilog of an Amaranth RTLIL design with every register's enable and synchronous reset
    folded into its ``always @(posedge clk)`` block.

    Amaranth's own Verilog computes each register's next value in combinational logic
    (``next = rst ? init : en ? f : q``) and copies it on the clock edge; Verilator evaluates
    that logic on every evaluation, whatever ``en``. Yosys's ``opt_dff`` turns the multiplexers
    in front of a flip-flop into its enable and reset, so the Verilog reads ``if (rst) q <=
    init; else if (en) q <= f;`` and Verilator computes ``f`` (when only this register uses it)
    only when ``en`` holds. The same function, cycle for cycle: ``proc`` and ``opt_dff`` are
    equivalence-preserving. Registers whose next value is a constant under some condition get
    that condition as part of their reset (``opt_dff`` merges it with ``rst``), which is why the
    reset must not come from a primary input (see :func:`to_verilog`). Yosys writes the
    parallel multiplexers ``proc`` makes (``FSM`` and ``Switch`` statements) as Verilog
    functions named ``\$procmux$N``, which Icarus takes for unknown system functions: they
    are renamed ``zs_pmux_N``.
    """
    from amaranth._toolchain.yosys import find_yosys
    yosys = find_yosys(lambda ver: ver >= (0, 40))
    script = [f"read_rtlil <<rtlil\n{rtlil_text}\nrtlil", *FOLD_PASSES, "memory_collect",
              "write_verilog -norename"]
    text = yosys.run(["-q", "-"], "\n".join(script), ignore_warnings=True)
    return _PMUX_FUNCTION_RE.sub(r"zs_pmux_\1\2", text)


# ``\$procmux$N`` as a whole escaped identifier (ended by white space), not ``..._Y`` wires.
_PMUX_FUNCTION_RE = re.compile(r"\\\$procmux\$(\d+)(\s)")


#: The wrapper's simulation-only input for bulk DRAM loads (see :func:`to_verilog`).
DRAM_READMEM_PORT = "host_dram_readmem"
#: The plusarg naming the hex file that :data:`DRAM_READMEM_PORT` loads.
DRAM_READMEM_PLUSARG = "zeroskip_dram_hex"
#: The DRAM model's array, seen from the wrapper: instance names, then the array (the path a
#: testbench uses for backdoor access; ``sim.build.Design``'s default).
DRAM_ARRAY = ("core", "dram", "mem", "mem")


def _reset_wrapper(name: str, core: str, ports) -> str:
    """A module ``name`` with the ports of ``core`` whose ``rst`` goes through a register,
    plus the simulation-only bulk DRAM load (:data:`DRAM_READMEM_PORT`)."""
    decls, conns = [], []
    for pname, direction, width in ports:
        rng = f"[{width - 1}:0] " if width > 1 else ""
        decls.append(f"  {direction} {rng}{pname};")
        conns.append(f"    .{pname}({'rst_q' if pname == 'rst' else pname})")
    names = [p for p, _, _ in ports] + [DRAM_READMEM_PORT]
    return "\n".join([
        f"module {name}({', '.join(names)});",
        *decls,
        f"  input {DRAM_READMEM_PORT};",
        "  // The core's reset is registered: no logic of the core depends combinationally on",
        "  // a primary input through its reset (rtl.verilog.RESET_LATENCY).",
        "  reg rst_q = 1'h1;",
        "  always @(posedge clk)",
        "    rst_q <= rst;",
        "  // Simulation only: a rising edge with host_dram_readmem high reads the hex file named",
        f"  // by the plusarg +{DRAM_READMEM_PLUSARG}=PATH into the DRAM model (one $readmemh",
        "  // instead of a VPI write per word; the file's @address lines place the words).",
        "  reg [8*1024-1:0] dram_hex;",
        "  initial begin",
        f"    if (!$value$plusargs(\"{DRAM_READMEM_PLUSARG}=%s\", dram_hex)) dram_hex = 0;",
        "  end",
        "  always @(posedge clk)",
        f"    if ({DRAM_READMEM_PORT}) $readmemh(dram_hex, {'.'.join(DRAM_ARRAY)});",
        f"  {core} core (",
        ",\n".join(conns),
        "  );",
        "endmodule", ""])


def to_verilog(cfg: HardwareConfig, *, name: str = TOP_NAME, fold: bool = True) -> str:
    """Verilog text of :class:`~rtl.top.Accelerator` for ``cfg`` (memory modules included).

    With ``fold`` (the default), the accelerator is module ``<name>_core``, converted with
    :func:`fold_register_enables`, inside a wrapper ``<name>`` with the same ports whose
    ``rst`` reaches the core through one register (initialised to 1, so the core is in reset
    from time 0): the core enters and leaves reset :data:`RESET_LATENCY` rising edge later
    than ``rst`` (a testbench releases ``rst`` that much earlier; :mod:`sim.cocotb_tb` does).
    Everything else about the ports is unchanged; the DRAM model's array is
    ``core.dram.mem.mem``. The wrapper has one more input, :data:`DRAM_READMEM_PORT`, for
    simulation only: a rising edge with it high loads the DRAM model from a hex file by
    ``$readmemh`` (the file named by the plusarg ``+zeroskip_dram_hex=PATH``; ``@address``
    lines in it place the words), which :mod:`sim.cocotb_tb` uses instead of one VPI write per
    word.

    Why the wrapper: Verilator evaluates every piece of combinational logic that depends on a
    primary input (its "ico" region) on *every* evaluation, i.e. on both clock edges, besides
    evaluating it after the registers change. Amaranth's reset is such an input and reaches
    every register's next-state logic, and the resets :func:`fold_register_enables` merges
    would pull whole next-state cones into that region. Measured in :mod:`sim.build`.
    """
    platform = _VerilogPlatform()
    top = Accelerator(cfg)
    if not fold:
        text = verilog.convert(top, name=name, platform=platform, emit_src=False)
    else:
        from amaranth.back import rtlil
        core = f"{name}_core"
        text = fold_register_enables(rtlil.convert(top, name=core, platform=platform,
                                                   emit_src=False))
        ports = [("clk", "input", 1), ("rst", "input", 1)]
        for path, member, value in top.signature.flatten(top):
            ports.append(("__".join(map(str, path)),
                          "input" if member.flow == In else "output", len(value)))
        text = _reset_wrapper(name, core, ports) + "\n" + text
    return text + "\n" + "\n".join(_memory_module(r, w) for r, w in sorted(platform.modules))


to_verilog.reset_latency = RESET_LATENCY
