"""The driver interface: everything the host program may do to the accelerator.

The host program (:mod:`sim.host`) is written once against :class:`Driver`; each backend
supplies an implementation (Amaranth simulator testbench, cocotb on Verilator or Icarus, the
functional model). Every method is a coroutine and a call costs the backend at most a few
Python wake-ups plus, for the port-based transfers, one per word: :meth:`Driver.run` waits for
``done`` inside the simulator, so a program of any length costs one wake-up.

Timing contract (what every implementation must reproduce exactly, so that backends agree
cycle for cycle):

* Host writes and reads go through the host ports, one word per clock cycle, and are only
  issued while the accelerator is idle (drivers raise :class:`DriverError` otherwise). Backdoor loads (DRAM, instruction memory) take zero
  simulated cycles; port loads take one cycle per word. Neither is counted by :meth:`run`.
* :meth:`run` samples ``cnt_cycles`` in the cycle ``start`` is presented, and again once
  ``done`` is observed high after the clock edge that raised it; the difference is returned.
  It therefore counts the clock edges from the one that latches ``start`` to the one that
  raises ``done``, both included.
"""

from __future__ import annotations

import abc

from rtl.config import HardwareConfig

__all__ = ["Driver", "DriverError", "counter_deltas", "DEFAULT_RUN_TIMEOUT_CYCLES"]

#: Default bound on the cycles of one :meth:`Driver.run`, so that a design that never raises
#: ``done`` fails with :class:`DriverError` instead of simulating forever.
DEFAULT_RUN_TIMEOUT_CYCLES = 200_000_000


class DriverError(RuntimeError):
    """A host operation that cannot be carried out (bad address, hardware did not finish)."""


class Driver(abc.ABC):
    """Host-side access to one accelerator instance.

    Attributes
    ----------
    cfg : HardwareConfig
        The configuration of the hardware being driven.
    counter_names : tuple of str
        The scalar performance counters (``rtl.top.COUNTERS``).
    """

    cfg: HardwareConfig
    counter_names: tuple[str, ...]

    # Optional: ``async def trace(self, on: bool)`` opens or closes a window of waveforms.
    # The RNN-T host calls it at frame boundaries (``sim.rnnt_host.run_utterance(
    # trace_frames=...)``). The HDL drivers do not have it: ``sim.window.WindowDriver`` does,
    # running the window on the HDL driver and the rest on the functional model
    # (``zeroskip simulate --wave-frames``).

    # -- loading -----------------------------------------------------------------------------

    @abc.abstractmethod
    async def write_dram(self, words: list[int], base: int = 0) -> None:
        """Store ``words`` (``cfg.dram_word_bits`` each) at DRAM word ``base``."""

    @abc.abstractmethod
    async def write_imem(self, words: list[int], base: int = 0) -> None:
        """Store instruction words at instruction-memory address ``base``."""

    # -- activations -------------------------------------------------------------------------

    @abc.abstractmethod
    async def write_act(self, base: int, words: list[int]) -> None:
        """Write activation words (``cfg.aword_bits`` each; element ``k`` at bits
        ``[8k, 8k+8)``) at activation-SRAM word ``base``."""

    @abc.abstractmethod
    async def read_act(self, base: int, n: int) -> list[int]:
        """Read ``n`` activation words starting at ``base``."""

    # -- execution ---------------------------------------------------------------------------

    @abc.abstractmethod
    async def run(self, pc: int, arg: int = 0) -> int:
        """Pulse ``start`` at ``pc``, wait for ``done``; return the cycles the hardware counted
        (``cnt_cycles`` difference, see the module docstring). Raises :class:`DriverError` if
        ``done`` does not rise within the backend's cycle limit, or rises with ``fault`` (an
        unknown opcode) set.

        ``arg`` is the value of the ``ARG`` register for this run (``MOVE.INDEXED``, see
        :mod:`rtl.isa`), presented with ``start`` (port ``start_arg``, ``act_addr_bits`` wide)
        and latched with it: no extra cycle. A backend whose design has no ``ARG`` register
        raises :class:`DriverError` for ``arg != 0``."""

    @abc.abstractmethod
    async def counters(self) -> dict:
        """Current counter values: one entry per name in :attr:`counter_names`, plus
        ``"lane_busy"`` and ``"lane_stall"``: lists of ``cfg.lanes`` values."""

    # -- helpers shared by implementations ---------------------------------------------------

    def _check_range(self, what: str, base: int, n: int, depth: int) -> None:
        if base < 0 or n < 0 or base + n > depth:
            raise DriverError(f"{what}: words [{base}, {base + n}) outside the memory of "
                              f"{depth} words")

    def _check_arg(self, pc: int, arg: int, has_register: bool) -> None:
        """Refuse an ``arg`` the design cannot take (see :meth:`run`)."""
        if not has_register:
            if arg:
                raise DriverError(f"run(pc={pc}, arg={arg}): this design has no ARG register "
                                  f"(start_arg port)")
        elif not 0 <= arg < (1 << self.cfg.act_addr_bits):
            raise DriverError(f"run: arg {arg} does not fit the ARG register "
                              f"({self.cfg.act_addr_bits} bits)")

    def _check_words(self, what: str, words, bits: int) -> list[int]:
        words = [int(w) for w in words]
        lim = 1 << bits
        for i, w in enumerate(words):
            if not 0 <= w < lim:
                raise DriverError(f"{what}: word {i} = {w:#x} does not fit {bits} bits")
        return words


def counter_deltas(before: dict, after: dict, bits: int | None = None) -> dict:
    """``after - before`` for two :meth:`Driver.counters` snapshots, element-wise for the lane
    lists; modulo ``2**bits`` (the counter width) when ``bits`` is given, so a counter that
    wrapped once still gives the right difference."""
    def sub(a, b):
        return (a - b) % (1 << bits) if bits else a - b

    out = {}
    for name, v in after.items():
        if isinstance(v, list):
            out[name] = [sub(a, b) for a, b in zip(v, before[name])]
        else:
            out[name] = sub(v, before[name])
    return out
