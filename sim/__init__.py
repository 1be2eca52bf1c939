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

import os

#: PyTorch's OpenMP worker threads spin between parallel regions by default. Decoding runs many
#: small operations, so on a machine whose cores are busy (a training run in the background, two
#: benchmark processes) the spinning threads fight the other work for the cores: with two training
#: runs on this project's 2-core machine, beam-4 decoding of 30 test utterances took 183 s with
#: spinning waits (``OMP_WAIT_POLICY=ACTIVE``) and 16 s with sleeping ones, and ``zeroskip
#: transcribe`` of four examples 35 s instead of 3.6 s. Idle, spinning is ~13 % faster
#: (``benchmarks/decode_threads.py`` measures both). So every entry point that imports this
#: package first (``zeroskip``, the benchmarks) makes the threads sleep unless the user chose
#: otherwise. libgomp reads the variable once, when PyTorch is first imported: this must run
#: before that.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
