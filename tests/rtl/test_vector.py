"""The vector unit (VADD, VMUL, LUT, CELL, MOVE and LOAD.LUT) in the whole accelerator on the
Amaranth simulator, against the functional model (the executable form of ``rtl.isa``'s
semantics, itself checked against ``model.intref``): every activation word, the cycles of every
run (the functional model takes its vector timing from ``rtl.vector.unit_cycles``) and the
counters, on random operands and random lookup tables."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from rtl import isa
from rtl.config import HardwareConfig
from rtl.vector import READS_PER_WORD, unit_cycles
from sim.amaranth_backend import run_host as run_amaranth
from sim.functional import run_host as run_functional

#: tiny, with room for CELL operands of a few words.
CFG = HardwareConfig.tiny().replace(act_depth=64, dram_depth=1024)
K = CFG.k
VECTOR_OPS = ("VADD", "VMUL", "LUT", "CELL", "MOVE")


def lut_stream(cfg, tables: np.ndarray) -> list[int]:
    """The LUT memory's 32 rows as DRAM words."""
    raw = tables.astype(np.int8).tobytes()
    B = cfg.dram_bytes_per_cycle
    return [int.from_bytes(raw[i:i + B], "little") for i in range(0, len(raw), B)]


def place(rng, sizes: list[int], depth: int) -> list[int]:
    """Disjoint word ranges of the given sizes, in random order with random gaps."""
    order = rng.permutation(len(sizes))
    slack = depth - sum(sizes)
    cuts = np.sort(rng.integers(0, slack + 1, size=len(sizes)))
    bases, at, prev = [0] * len(sizes), 0, 0
    for j, i in enumerate(order):
        at += int(cuts[j] - prev)
        prev = int(cuts[j])
        bases[i] = at
        at += sizes[i]
    return bases


def make_case(op: str, n: int, seed: int, *, in_place: bool = False) -> dict:
    """One instruction with non-overlapping operands, an ARG and a fresh activation SRAM."""
    rng = np.random.default_rng(seed)
    arg = 0
    if op in ("VADD", "VMUL"):
        dst, a, b = place(rng, [n, n, n], CFG.act_depth)
        if in_place:
            dst = a
        word = isa.encode(CFG, isa.Op[op], dst=dst, a=a, b=b, n=n,
                          **({"shift": int(rng.integers(0, 16))} if op == "VMUL" else {}))
    elif op == "LUT":
        dst, a = place(rng, [n, n], CFG.act_depth)
        if in_place:
            dst = a
        word = isa.lut(CFG, dst=dst, a=a, n=n, table=int(rng.integers(0, 2)))
    elif op == "CELL":
        dst, a, b = place(rng, [n, 4 * n, 2 * n], CFG.act_depth)
        word = isa.cell(CFG, dst=dst, a=a, b=b, n=n)
    else:
        indexed = bool(rng.integers(0, 2))
        if indexed:
            rows = int(rng.integers(1, 5))
            dst, a = place(rng, [n, rows * n], CFG.act_depth)
            arg = int(rng.integers(0, rows))
        else:
            dst, a = place(rng, [n, n], CFG.act_depth)
        word = isa.move(CFG, dst=dst, a=a, n=n, indexed=indexed)
    acts = rng.integers(-128, 128, size=(CFG.act_depth, K))
    # Exercise saturation: some extreme values.
    acts[rng.random(acts.shape) < 0.1] = -128
    acts[rng.random(acts.shape) < 0.1] = 127
    words = [int.from_bytes(row.astype(np.int8).tobytes(), "little") for row in acts]
    return {"op": op, "n": n, "word": word, "arg": arg, "acts": words}


def routine_for(cases, tables):
    stream = lut_stream(CFG, tables)
    load_lut = isa.load(CFG, dram_addr=0, dram_len=len(stream), count=isa.LUT_ROWS, dest=0,
                        lut=True)

    async def routine(drv):
        await drv.write_dram(stream)
        await drv.write_imem([load_lut, isa.end(CFG)])
        out = {"load_cycles": await drv.run(0), "runs": []}
        for case in cases:
            await drv.write_imem([case["word"], isa.end(CFG)])
            await drv.write_act(0, case["acts"])
            before = await drv.counters()
            cycles = await drv.run(0, case["arg"])
            after = await drv.counters()
            out["runs"].append({
                "cycles": cycles,
                "acts": await drv.read_act(0, CFG.act_depth),
                "counters": {k: after[k] - before[k] for k in
                             ("vector_cycles", "load_cycles", "matvec_cycles",
                              *(f"instr_{o.name.lower()}" for o in isa.Op))},
            })
        return out
    return routine


def check(cases, tables):
    routine = routine_for(cases, tables)
    want = run_functional(CFG, routine)
    got = run_amaranth(CFG, routine)
    assert got["load_cycles"] == want["load_cycles"]
    for case, g, w in zip(cases, got["runs"], want["runs"]):
        what = isa.disassemble(CFG, case["word"])
        for addr, (gw, ww) in enumerate(zip(g["acts"], w["acts"])):
            if gw != ww:
                gb = np.frombuffer(gw.to_bytes(K, "little"), np.int8)
                wb = np.frombuffer(ww.to_bytes(K, "little"), np.int8)
                pytest.fail(f"{what} (arg {case['arg']}): word {addr} is {gb.tolist()}, the "
                            f"reference has {wb.tolist()}")
        assert g["cycles"] == w["cycles"], what
        assert g["counters"] == w["counters"], what
        op, n = isa.Op[case["op"]], case["n"]
        # run() counts the start cycle, fetch, decode, the unit, then END's fetch and decode.
        assert g["cycles"] == 1 + 2 + unit_cycles(op, n) + 2, what
        assert g["counters"]["vector_cycles"] == 1 + unit_cycles(op, n)
        assert g["counters"][f"instr_{case['op'].lower()}"] == 1


def random_tables(seed):
    return np.random.default_rng(seed).integers(-128, 128, size=(isa.LUT_TABLES,
                                                                  isa.LUT_ENTRIES))


@pytest.mark.parametrize("op", VECTOR_OPS)
def test_each_op_of_one_and_two_words(op):
    cases = [make_case(op, n, seed=10 * n + i) for n in (1, 2) for i in range(2)]
    check(cases, random_tables(1))


def test_in_place_and_zero_length():
    cases = [make_case("VADD", 2, 3, in_place=True), make_case("VMUL", 1, 4, in_place=True),
             make_case("LUT", 3, 5, in_place=True)]
    cases += [dict(make_case(op, 1, 6), word=isa.encode(CFG, isa.Op[op], **fields), n=0)
              for op, fields in (("VADD", dict(dst=0, a=1, b=2, n=0)),
                                 ("CELL", dict(dst=0, a=1, b=9, n=0)),
                                 ("LUT", dict(dst=0, a=1, n=0)))]
    check(cases, random_tables(2))


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**31 - 1),
       ops=st.lists(st.tuples(st.sampled_from(VECTOR_OPS), st.integers(1, 4)), min_size=1,
                    max_size=5))
def test_random_programs(seed, ops):
    cases = [make_case(op, min(n, 2) if op == "CELL" else n, seed + i)
             for i, (op, n) in enumerate(ops)]
    check(cases, random_tables(seed))


def test_unit_cycles_table():
    assert [unit_cycles(op, 3) for op in (isa.Op.VADD, isa.Op.VMUL, isa.Op.MOVE, isa.Op.LUT,
                                          isa.Op.CELL)] == [9, 9, 6, 7, 23]
    assert all(unit_cycles(op, 0) == 2 for op in READS_PER_WORD)
    with pytest.raises(ValueError, match="MATVEC is not a vector instruction"):
        unit_cycles(isa.Op.MATVEC, 1)
