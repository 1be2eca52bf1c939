"""Waves for a window of frames: the HDL simulator runs the window, the functional model the rest.

A whole utterance on an HDL simulator with waves on writes gigabytes, and switching tracing on
and off inside the simulator is not portable (Verilator 5.048 ignores ``$dumpon``/``$dumpoff``).
Instead the host routine's driver is a :class:`WindowDriver`, a *switching driver*: it holds the
backend's HDL driver and a :class:`~sim.functional.FunctionalDriver` of the same configuration
and sends each operation to one of them. Simulated time on the HDL advances only while the HDL
is driven (the cocotb and Amaranth simulators advance time only when the routine awaits one of
their triggers), so the dump holds only what the HDL did, and the same scheme works unchanged on
Verilator, Icarus and the Amaranth simulator.

Routing
-------
=================================  ===========================================================
``write_dram``, ``write_imem``     both drivers, always (loads: the memories must hold the same
                                   image on both whichever runs next)
``run`` of a *setup* program       both drivers, always; returns the HDL's cycles. Setup
(``setup_pcs``: ``init``)          programs load the state that lives outside the activation
                                   SRAM (weight SRAM, parameter memories, LUT memory); they
                                   must not read the activation SRAM
``write_act``, ``read_act``,       the active driver: the functional model *outside* the
``run`` of any other program       window (from the start), the HDL *inside* it
``trace(True)`` / ``trace(False)`` enter / leave the window (the host calls them at frame
                                   boundaries: :func:`sim.rnnt_host.run_utterance`'s
                                   ``trace_frames``)
=================================  ===========================================================

The activation SRAM is the only state carried across a switch: the RNN-T programs write
nothing else that a later program reads (``ARG`` comes with every ``run``; streamed weights
are loaded by the program that uses them; :mod:`compiler.rnnt`). Entering the window copies the
functional model's activation words ``[0, act_words)`` into the HDL through its host port
(``write_act``, one cycle per word); leaving it reads the HDL's back (``read_act``) into the
functional model. ``act_words`` is the part of the SRAM the compiled model uses
(:func:`act_extent`; default the whole ``act_depth``).

So the HDL, and its dump, sees: the image load and ``init`` (mirrored), the copy in, the
window's frames, the copy out. Nothing checks the copies themselves: every value the host reads
is still compared with the integer reference, and a bad transfer shows as a
:class:`~sim.rnnt_host.RNNTMismatch` in the window's first frame (or in the first frame after
it).

Counters and cycles
-------------------
:meth:`WindowDriver.counters` is what one accelerator would have counted had it run every
program and host transfer itself: the functional model's counters (which count the mirrored
loads and setup runs and everything outside the window) plus the HDL's increments over each
window (from after the copy in to before the copy out). The copies are simulation artefacts
and are counted by neither (their host-port words are left out on both sides). The names are
those both drivers have (the HDL's order); ``lane_busy`` / ``lane_stall`` add lane by lane
(the functional model does not model stalls: they are the window's). Sums are modulo
``2**counter_bits``, like the hardware's, so :func:`~sim.driver.counter_deltas` works on them.
Outside the window the ``cycles``, ``load_cycles``, ``matvec_cycles`` and ``vector_cycles``
are therefore the functional model's estimate (exact for LOAD and vector instructions,
MATVEC within a fraction of a percent); the other counters are exact everywhere.

:meth:`run` returns the cycles of the driver that ran the program (the HDL's for a mirrored
setup program; the functional model's are kept in :meth:`summary`), so a host's sum of run
cycles is likewise measured inside the window and estimated outside it.
"""

from __future__ import annotations

from .driver import Driver, counter_deltas

__all__ = ["WindowDriver", "run_windowed", "act_extent"]


def _add(a: dict, b: dict, mod: int) -> dict:
    """``a + b`` for two counter snapshots with the same names, modulo ``mod`` (the inverse of
    :func:`~sim.driver.counter_deltas`)."""
    return {name: ([(x + y) % mod for x, y in zip(v, b[name])] if isinstance(v, list)
                   else (v + b[name]) % mod) for name, v in a.items()}


class WindowDriver(Driver):
    """A :class:`~sim.driver.Driver` that runs a window on ``hdl`` and the rest on
    ``functional`` (module docstring).

    Parameters
    ----------
    hdl : Driver
        The backend's driver (any :class:`~sim.driver.Driver`; the tests use a second
        functional one).
    functional : Driver
        Normally a fresh :class:`~sim.functional.FunctionalDriver` of the same configuration.
    act_words : int, optional
        Activation words ``[0, act_words)`` copied at each switch (default ``cfg.act_depth``).
    setup_pcs : iterable of int
        Entry points of the setup programs, run on both drivers.

    Attributes
    ----------
    inside : bool
        ``True`` while the window is open (operations go to ``hdl``).
    counter_names : tuple of str
        The counters both drivers have, in ``hdl``'s order.

    Raises
    ------
    ValueError
        The drivers' configurations differ, or ``act_words`` is not in ``1..act_depth``.
    """

    def __init__(self, hdl: Driver, functional: Driver, *, act_words: int | None = None,
                 setup_pcs=()):
        if hdl.cfg.digest != functional.cfg.digest:
            raise ValueError(f"WindowDriver: the drivers simulate different configurations "
                             f"({hdl.cfg.digest} and {functional.cfg.digest})")
        self.cfg = hdl.cfg
        self.hdl = hdl
        self.functional = functional
        depth = self.cfg.act_depth
        self.act_words = depth if act_words is None else int(act_words)
        if not 1 <= self.act_words <= depth:
            raise ValueError(f"WindowDriver: act_words must be in 1..{depth} (act_depth), not "
                             f"{act_words!r}")
        self.setup_pcs = frozenset(int(pc) for pc in setup_pcs)
        fnames = set(functional.counter_names)
        self.counter_names = tuple(n for n in hdl.counter_names if n in fnames)
        self.inside = False
        self._mod = 1 << self.cfg.counter_bits
        zero = {n: 0 for n in self.counter_names}
        zero.update(lane_busy=[0] * self.cfg.lanes, lane_stall=[0] * self.cfg.lanes)
        self._f_excluded = zero                 # functional counters spent on the copies
        self._h_windows = zero                  # HDL increments over closed windows
        self._h_open: dict | None = None        # HDL counters when the open window began
        self._stats = {
            "windows": 0, "words_to_hdl": 0, "words_from_hdl": 0,
            "hdl_runs": 0, "hdl_run_cycles": 0,
            "functional_runs": 0, "functional_run_cycles": 0,
            "setup_runs": [],
        }

    @property
    def active(self) -> Driver:
        """The driver that takes activation transfers and program runs now."""
        return self.hdl if self.inside else self.functional

    # -- loading: both -----------------------------------------------------------------------

    async def write_dram(self, words, base=0):
        await self.hdl.write_dram(words, base)
        await self.functional.write_dram(words, base)

    async def write_imem(self, words, base=0):
        await self.hdl.write_imem(words, base)
        await self.functional.write_imem(words, base)

    # -- activations: the active driver --------------------------------------------------------

    async def write_act(self, base, words):
        await self.active.write_act(base, words)

    async def read_act(self, base, n):
        return await self.active.read_act(base, n)

    # -- execution -----------------------------------------------------------------------------

    async def run(self, pc, arg=0):
        call = (lambda d: d.run(pc, arg)) if arg else (lambda d: d.run(pc))
        if pc in self.setup_pcs:
            hdl_cycles = await call(self.hdl)
            f_cycles = await call(self.functional)
            self._stats["setup_runs"].append({"pc": pc, "hdl_cycles": hdl_cycles,
                                              "functional_cycles": f_cycles})
            return hdl_cycles
        cycles = await call(self.active)
        side = "hdl" if self.inside else "functional"
        self._stats[f"{side}_runs"] += 1
        self._stats[f"{side}_run_cycles"] += cycles
        return cycles

    async def counters(self):
        bits = self.cfg.counter_bits
        out = counter_deltas(self._f_excluded, self._pick(await self.functional.counters()), bits)
        out = _add(out, self._h_windows, self._mod)
        if self.inside:
            now = self._pick(await self.hdl.counters())
            out = _add(out, counter_deltas(self._h_open, now, bits), self._mod)
        return out

    def _pick(self, cnt: dict) -> dict:
        out = {n: cnt[n] for n in self.counter_names}
        out["lane_busy"] = list(cnt["lane_busy"])
        out["lane_stall"] = list(cnt["lane_stall"])
        return out

    # -- the window ----------------------------------------------------------------------------

    async def trace(self, on: bool) -> None:
        """Open (``True``) or close (``False``) the window; a no-op if it already is."""
        if bool(on) == self.inside:
            return
        n = self.act_words
        if on:
            words = await self._excluding(self.functional, self.functional.read_act(0, n))
            await self.hdl.write_act(0, words)
            self._h_open = self._pick(await self.hdl.counters())
            self.inside = True
            self._stats["windows"] += 1
            self._stats["words_to_hdl"] += n
        else:
            now = self._pick(await self.hdl.counters())
            inc = counter_deltas(self._h_open, now, self.cfg.counter_bits)
            self._h_windows = _add(self._h_windows, inc, self._mod)
            self._h_open = None
            self.inside = False
            words = await self.hdl.read_act(0, n)
            await self._excluding(self.functional, self.functional.write_act(0, words))
            self._stats["words_from_hdl"] += n

    async def _excluding(self, driver: Driver, op):
        """Await ``op`` on the functional ``driver``, leaving its counter increments out of
        :meth:`counters`."""
        before = self._pick(await driver.counters())
        result = await op
        inc = counter_deltas(before, self._pick(await driver.counters()), self.cfg.counter_bits)
        self._f_excluded = _add(self._f_excluded, inc, self._mod)
        return result

    def summary(self) -> dict:
        """What ran where: ``windows`` (times the window opened), ``words_to_hdl`` /
        ``words_from_hdl`` (activation words copied), ``hdl_runs``, ``hdl_run_cycles``,
        ``functional_runs``, ``functional_run_cycles`` (setup runs excluded), ``setup_runs``
        (``[{"pc", "hdl_cycles", "functional_cycles"}]``: the mirrored runs with both
        drivers' cycles), ``act_words``."""
        out = dict(self._stats, act_words=self.act_words)
        out["setup_runs"] = [dict(r) for r in self._stats["setup_runs"]]
        return out


def act_extent(crnnt) -> int:
    """The activation words a :class:`compiler.rnnt.CompiledRNNT` uses: ``[0, act_extent)``."""
    ends = [r.end for r in crnnt.layout.values()]
    emb = crnnt.embedding
    ends.append(int(emb["act_base"]) + int(emb["words"]))
    return max(ends)


async def run_windowed(driver: Driver, *, routine, act_words: int | None = None,
                       setup_pcs=()) -> object:
    """Run the host ``routine`` on a :class:`WindowDriver` around ``driver`` and a fresh
    :class:`~sim.functional.FunctionalDriver`; a backend routine (picklable as a
    :func:`functools.partial` of this function with a picklable ``routine``).

    ``routine`` must call ``trace(True)`` / ``trace(False)`` itself (e.g.
    :func:`sim.rnnt_host.run_utterance` with ``trace_frames``). A ``dict`` result gets the key
    ``"window"``: :meth:`WindowDriver.summary`.
    """
    from .functional import FunctionalDriver
    wd = WindowDriver(driver, FunctionalDriver(driver.cfg), act_words=act_words,
                      setup_pcs=setup_pcs)
    result = await routine(wd)
    if isinstance(result, dict):
        result = dict(result, window=wd.summary())
    return result
