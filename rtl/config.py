"""The one hardware configuration that every layer of zeroskip takes.

:class:`HardwareConfig` holds the *primary* parameters of the accelerator only; everything that
follows from them (bus widths, address widths, bytes per record, peak MAC rate) is a property.
It is frozen, validated on construction (errors name the offending field), round-trips through
JSON and has a stable :attr:`~HardwareConfig.digest` that keys simulator builds and is stamped into
every memory image.

Dimension letters used across the project:

``L``  lanes (:attr:`~HardwareConfig.lanes`)
``K``  weights per SRAM word (:attr:`~HardwareConfig.k`)
``M``  multipliers per lane (:attr:`~HardwareConfig.m`)
``B``  DRAM bytes per cycle (:attr:`~HardwareConfig.dram_bytes_per_cycle`)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, fields
from pathlib import Path

__all__ = ["HardwareConfig", "ConfigError", "PARAM_RECORD_BYTES"]

#: Bytes of one per-row parameter record (bias, multiplier, shift, flags, output index); see
#: :mod:`rtl.memfmt`. A format constant, not a hardware parameter.
PARAM_RECORD_BYTES = 16


class ConfigError(ValueError):
    """An invalid hardware configuration. ``field`` names the offending parameter."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"HardwareConfig.{field}: {message}")


def _is_pow2(x: int) -> bool:
    return x > 0 and (x & (x - 1)) == 0


@dataclass(frozen=True)
class HardwareConfig:
    """Primary parameters of the zero-skipping accelerator.

    Parameters
    ----------
    lanes : int
        ``L``, number of MAC lanes; each owns a balanced set of output rows and a weight SRAM bank.
    k : int
        ``K``, weights per weight-SRAM word (and activations per activation-SRAM word). A power
        of two, at least 8: one compressed word carries a ``K``-bit nonzero bitmap.
    m : int
        ``M``, multipliers per lane: nonzero (weight, activation) pairs issued per lane per cycle.
    weight_bits : int
        Signed weight width: 4 or 8.
    act_bits : int
        Signed activation width (inputs and requantized outputs): 8.
    acc_bits : int
        Accumulator width; accumulation wraps modulo ``2**acc_bits`` (two's complement).
    wsram_depth : int
        Weight SRAM words *per lane*.
    act_depth : int
        Activation SRAM words (``K`` activations each), shared by all lanes.
    param_depth : int
        Per-row parameter records *per lane* (one per row slot).
    imem_depth : int
        Instruction memory words.
    dram_depth : int
        DRAM model size in DRAM words of ``B`` bytes.
    dram_bytes_per_cycle : int
        ``B``, bytes the DRAM model delivers per cycle (its word width). A power of two.
    result_ports : int
        Results the output arbiter writes to the activation SRAM per cycle (its write ports
        for MATVEC results, each one element wide). Layers whose rows take fewer than
        ``L / result_ports`` cycles each are bound by it. At most 4; with fewer lanes,
        :attr:`result_write_ports` (``min(L, result_ports)``) are built.
    counter_bits : int
        Width of every performance counter.
    clock_hz : int
        Clock frequency, used only for reporting (real time, bandwidth).
    """

    lanes: int = 16
    k: int = 64
    m: int = 4
    weight_bits: int = 4
    act_bits: int = 8
    acc_bits: int = 32
    wsram_depth: int = 4096
    act_depth: int = 512
    param_depth: int = 1024
    imem_depth: int = 256
    dram_depth: int = 1 << 18
    dram_bytes_per_cycle: int = 8
    result_ports: int = 2
    counter_bits: int = 48
    clock_hz: int = 200_000_000

    # -- validation -------------------------------------------------------------------------

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, int) or isinstance(v, bool):
                raise ConfigError(f.name, f"must be an integer, not {v!r}")
            if v <= 0:
                raise ConfigError(f.name, f"must be positive, not {v}")
        if not 1 <= self.lanes <= 256:
            raise ConfigError("lanes", f"must be between 1 and 256, not {self.lanes}")
        if not _is_pow2(self.k) or not 8 <= self.k <= 256:
            raise ConfigError("k", f"must be a power of two between 8 and 256, not {self.k}")
        if not 1 <= self.m <= self.k:
            raise ConfigError("m", f"must be between 1 and k={self.k}, not {self.m}")
        if self.weight_bits not in (4, 8):
            raise ConfigError("weight_bits", f"must be 4 or 8, not {self.weight_bits}")
        if self.act_bits != 8:
            raise ConfigError("act_bits", f"must be 8 (int8 activations), not {self.act_bits}")
        # The accumulator must at least hold one product (it wraps beyond that, and the
        # compiler keeps real layers inside it) and keep the requantization product in 64 bits.
        if not self.weight_bits + self.act_bits <= self.acc_bits <= 32:
            raise ConfigError(
                "acc_bits",
                f"must be between weight_bits+act_bits={self.weight_bits + self.act_bits} "
                f"and 32, not {self.acc_bits}")
        for name in ("wsram_depth", "act_depth", "param_depth", "imem_depth", "dram_depth"):
            v = getattr(self, name)
            if not _is_pow2(v):
                raise ConfigError(name, f"must be a power of two, not {v}")
        if self.wsram_depth > 1 << 20:
            raise ConfigError("wsram_depth", f"must be at most 2**20, not {self.wsram_depth}")
        if self.act_depth > 1 << 16:
            raise ConfigError("act_depth", f"must be at most 2**16, not {self.act_depth}")
        if self.param_depth > 1 << 20:
            raise ConfigError("param_depth", f"must be at most 2**20, not {self.param_depth}")
        if self.imem_depth > 1 << 16:
            raise ConfigError("imem_depth", f"must be at most 2**16, not {self.imem_depth}")
        if self.dram_depth > 1 << 26:
            raise ConfigError("dram_depth", f"must be at most 2**26, not {self.dram_depth}")
        if not _is_pow2(self.dram_bytes_per_cycle) or self.dram_bytes_per_cycle > 64:
            raise ConfigError("dram_bytes_per_cycle",
                              f"must be a power of two up to 64, not {self.dram_bytes_per_cycle}")
        if not 1 <= self.result_ports <= 4:
            raise ConfigError("result_ports", f"must be between 1 and 4, not {self.result_ports}")
        if not 24 <= self.counter_bits <= 64:
            raise ConfigError("counter_bits", f"must be between 24 and 64, not {self.counter_bits}")

    # -- presets ----------------------------------------------------------------------------

    @classmethod
    def default(cls) -> "HardwareConfig":
        """16 lanes x 4 multipliers, 64-weight words, 4-bit weights, 2 MiB weight SRAM,
        8 bytes/cycle DRAM, 200 MHz: holds a 1024x1024 layer (and a ~2 M-weight model) resident."""
        return cls()

    @classmethod
    def tiny(cls) -> "HardwareConfig":
        """2 lanes x 2 multipliers, 8-weight words, 8-bit weights: small enough for fast
        Amaranth-simulator tests while exercising every mechanism."""
        return cls(lanes=2, k=8, m=2, weight_bits=8, act_bits=8, acc_bits=32, wsram_depth=64,
                   act_depth=16, param_depth=32, imem_depth=16, dram_depth=1024,
                   dram_bytes_per_cycle=1, counter_bits=32, clock_hz=100_000_000)

    PRESETS = ("tiny", "default")

    @classmethod
    def preset(cls, name: str) -> "HardwareConfig":
        if name not in cls.PRESETS:
            raise ConfigError("preset", f"unknown preset {name!r}; choose one of {', '.join(cls.PRESETS)}")
        return getattr(cls, name)()

    @classmethod
    def resolve(cls, spec: str) -> "HardwareConfig":
        """A preset name (``tiny``, ``default``) or the path of a JSON file."""
        if spec in cls.PRESETS:
            return cls.preset(spec)
        path = Path(spec)
        if not path.exists():
            raise ConfigError("preset", f"{spec!r} is neither a preset ({', '.join(cls.PRESETS)}) "
                                        "nor an existing JSON file")
        return cls.from_json(path.read_text())

    def replace(self, **changes) -> "HardwareConfig":
        return dataclasses.replace(self, **changes)

    # -- serialization ----------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "HardwareConfig":
        if not isinstance(d, dict):
            raise ConfigError("json", f"expected an object, not {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(unknown[0], f"unknown parameter (known: {', '.join(sorted(known))})")
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> "HardwareConfig":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError("json", f"not valid JSON: {e}") from None
        return cls.from_dict(d)

    @property
    def digest(self) -> str:
        """16 hex digits of SHA-256 over the canonical JSON: keys builds and memory images."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    # -- derived values ---------------------------------------------------------------------

    @property
    def macs_per_cycle(self) -> int:
        """Peak multiplier issue rate, ``L*M``."""
        return self.lanes * self.m

    @property
    def result_write_ports(self) -> int:
        """Result write ports the output arbiter has: ``min(L, result_ports)`` (one result
        per lane per cycle at most)."""
        return min(self.lanes, self.result_ports)

    @property
    def wword_bits(self) -> int:
        """Width of a dense weight-SRAM word, ``K*weight_bits``."""
        return self.k * self.weight_bits

    @property
    def aword_bits(self) -> int:
        """Width of an activation-SRAM word, ``K*act_bits``."""
        return self.k * self.act_bits

    @property
    def dram_word_bits(self) -> int:
        return 8 * self.dram_bytes_per_cycle

    @property
    def bitmap_bytes(self) -> int:
        """Bytes of the nonzero bitmap that opens every compressed weight word."""
        return self.k // 8

    @property
    def max_compressed_word_bytes(self) -> int:
        """A compressed word with every weight nonzero: bitmap plus ``K`` packed values."""
        return self.bitmap_bytes + (self.k * self.weight_bits + 7) // 8

    @property
    def param_record_bytes(self) -> int:
        return PARAM_RECORD_BYTES

    @property
    def wsram_addr_bits(self) -> int:
        return max(1, (self.wsram_depth - 1).bit_length())

    @property
    def act_addr_bits(self) -> int:
        return max(1, (self.act_depth - 1).bit_length())

    @property
    def param_addr_bits(self) -> int:
        return max(1, (self.param_depth - 1).bit_length())

    @property
    def imem_addr_bits(self) -> int:
        return max(1, (self.imem_depth - 1).bit_length())

    @property
    def dram_addr_bits(self) -> int:
        return max(1, (self.dram_depth - 1).bit_length())

    @property
    def lane_bits(self) -> int:
        return max(1, (self.lanes - 1).bit_length())

    @property
    def act_elems(self) -> int:
        """Activations the activation SRAM holds."""
        return self.act_depth * self.k

    @property
    def out_index_bits(self) -> int:
        """Width of a row's output element index (relative to the matvec's output base)."""
        return 16

    @property
    def weight_sram_bytes(self) -> int:
        return self.lanes * self.wsram_depth * self.wword_bits // 8

    @property
    def dram_bytes(self) -> int:
        return self.dram_depth * self.dram_bytes_per_cycle

    @property
    def decompressor_keeps_up(self) -> bool:
        """True when the decompressor (one word per cycle) can absorb the full DRAM rate even
        for all-zero words: ``B <= K/8``. Otherwise sparse loads run below DRAM bandwidth."""
        return self.dram_bytes_per_cycle <= self.bitmap_bytes
