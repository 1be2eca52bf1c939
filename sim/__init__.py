"""Running things: the host program, the simulation backends and the tools around them.

=====================  ===================================================================
:mod:`sim.driver`      the driver interface the host program is written against
:mod:`sim.host`        the host program (async routines: load an image, run a matvec...)
:mod:`sim.backends`    one entry point: ``run_host(name, cfg, routine)`` for ``amaranth``,
                       ``verilator``, ``icarus``
:mod:`sim.amaranth_backend`  the Amaranth simulator backend
:mod:`sim.cocotb_backend`    cocotb + Verilator / Icarus (parent side);
:mod:`sim.cocotb_tb`         its cocotb test module (simulator side)
:mod:`sim.build`       Verilog and simulator builds, cached by content hash under ``build/``
:mod:`sim.waves`       GTKWave save files grouping the accelerator's signals
:mod:`sim.speed`       simulated cycles per second of each backend
=====================  ===================================================================
"""
