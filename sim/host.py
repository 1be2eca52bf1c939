"""The host program: the software that drives the accelerator, written once for every backend.

Each routine is a coroutine taking a :class:`~sim.driver.Driver` first; a backend runs it with
``run_host(cfg, routine, *args, **kwargs)`` (see :mod:`sim.backends`). Routines handed to the
cocotb backends are pickled *by reference*, so they must be module-level functions of an
importable module, and their arguments and results must pickle.

Routines return plain data (ints, lists, dicts), never backend objects.
"""

from __future__ import annotations

from rtl.memfmt import ImageError, MemoryImage

from .driver import Driver, counter_deltas

__all__ = ["load_image", "run_program", "run_matvec"]


async def load_image(driver: Driver, image: MemoryImage) -> None:
    """Store ``image``'s DRAM contents and programs (from address 0 of each memory).

    Raises :class:`~rtl.memfmt.ImageError` if the image was compiled for another configuration.
    """
    if image.config.digest != driver.cfg.digest:
        raise ImageError(f"image compiled for hardware config {image.config.digest}, but the "
                         f"simulated hardware is {driver.cfg.digest}; recompile it for this config")
    await driver.write_dram(image.dram_words)
    await driver.write_imem(image.program_words)


async def run_program(driver: Driver, image: MemoryImage, name: str) -> dict:
    """Run the program ``name`` of ``image``'s manifest.

    Returns ``{"pc", "cycles", "counters"}``: the entry point, the cycles the hardware counted
    and the counter differences over the run (see :meth:`Driver.counters`).
    """
    pc = image.entry(name)
    before = await driver.counters()
    cycles = await driver.run(pc)
    after = await driver.counters()
    return {"pc": pc, "cycles": cycles,
            "counters": counter_deltas(before, after, driver.cfg.counter_bits)}


async def run_matvec(driver: Driver, cm, x_words: list[int], n_out: int, *,
                     load: bool = True) -> dict:
    """One matrix-vector product, sparse and dense.

    Parameters
    ----------
    cm
        Anything with ``image`` (:class:`~rtl.memfmt.MemoryImage` whose manifest has the
        programs ``"load"``, ``"matvec"`` and optionally ``"matvec_dense"``), ``in_base`` and
        ``out_base`` (activation-SRAM word addresses), e.g. ``compiler.matvec.CompiledMatvec``.
    x_words : list of int
        The packed input vector (activation words), written at ``cm.in_base``.
    n_out : int
        Output words to read back from ``cm.out_base``.
    load : bool
        Load the image first (:func:`load_image`); pass ``False`` if it already is.

    Returns
    -------
    dict
        ``out_words`` (read after ``matvec``), ``out_words_dense`` (read after
        ``matvec_dense``, or ``None``), and ``"programs"``: for each program run, its
        :func:`run_program` result. Programs, in order: ``load``, ``matvec``, then if the image
        has them ``matvec_dense``, and ``load_weights`` / ``load_params`` (the two halves of
        ``load``, rerun on their own to time them: reloading is idempotent).
    """
    image = cm.image
    if load:
        await load_image(driver, image)
    available = image.manifest.get("programs", {})
    await driver.write_act(cm.in_base, list(x_words))
    programs = {"load": await run_program(driver, image, "load"),
                "matvec": await run_program(driver, image, "matvec")}
    result = {"programs": programs, "out_words": await driver.read_act(cm.out_base, n_out),
              "out_words_dense": None}
    if "matvec_dense" in available:
        programs["matvec_dense"] = await run_program(driver, image, "matvec_dense")
        result["out_words_dense"] = await driver.read_act(cm.out_base, n_out)
    for name in ("load_weights", "load_params"):
        if name in available:
            programs[name] = await run_program(driver, image, name)
    return result
