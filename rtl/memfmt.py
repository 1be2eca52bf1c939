"""Memory format: the contract between the compiler (producer) and the hardware (consumer).

Arithmetic the hardware implements
----------------------------------
For a row with int32 ``bias``, multiplier ``mult`` (``0 <= mult < 2**31``) and ``shift``
(``0 <= shift < 64``), and ``acc = sum_k w[k]*x[k]`` accumulated modulo ``2**acc_bits``::

    t = wrap_acc(acc + bias)                       # two's complement, acc_bits wide
    p = t * mult                                   # exact, 64-bit signed
    y = (p + (1 << (shift - 1))) >> shift  if shift > 0 else p   # round half up (towards +inf)
    y = clamp(y, -2**(act_bits-1), 2**(act_bits-1) - 1)         # saturate to int8

``>>`` is an arithmetic (flooring) shift. ``model.quant.requantize`` is the reference
(the model layer defines the arithmetic; this layer implements it).

Compressed weight word
----------------------
One weight-SRAM word holds ``K`` signed ``weight_bits`` weights. In DRAM it is stored as::

    bitmap   K bits, K/8 bytes; bit k (LSB first, byte 0 first) = 1 iff weight k != 0
    values   the nonzero weights in increasing k, weight_bits each, two's complement,
             packed LSB first; zero bits pad the word to a whole byte

so a word with ``n`` nonzeros takes ``K/8 + ceil(n*weight_bits/8)`` bytes. The decompressor
rebuilds the dense word: weight ``k`` is placed at bits ``[k*weight_bits, (k+1)*weight_bits)``.

Weight stream of one layer
--------------------------
Words ordered lane 0 first; within a lane, row slot by row slot, within a slot word 0 first (so
lane ``l``'s slot ``i`` word ``j`` lands at weight SRAM ``dest + i*n_words + j``). The stream
starts at a DRAM word boundary and is zero-padded to one at its end. Every lane has the same
number of row slots; slots without a row are all-zero words whose parameter record has
``write = 0``.

Parameter record (16 bytes, little-endian)
------------------------------------------
``bias`` int32 @0, ``mult`` uint32 @4 (< 2**31), ``shift`` uint8 @8 (< 64), ``flags`` uint8 @9
(bit 0: ``write`` the result), ``out_index`` uint16 @10, reserved zero @12..15. Records are
streamed like weights: lane 0's slots first.

Memory image file (version 1)
-----------------------------
A header of :data:`HEADER` (little-endian)::

    magic        8 bytes  b"ZSKIPIMG"
    version      uint32   FORMAT_VERSION
    digest       16 bytes the HardwareConfig digest (ASCII hex) the image was compiled for
    manifest_len uint32   bytes of the JSON manifest
    dram_len     uint32   bytes of the DRAM contents (a multiple of B)
    program_len  uint32   bytes of the instruction memory contents
    checksum     32 bytes SHA-256 of everything after the header

followed by the manifest (UTF-8 JSON: the config, the layers with their row placement, the
programs with their entry points, free-form metadata), the DRAM contents and the program.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

from amaranth.lib import data

from .config import PARAM_RECORD_BYTES, HardwareConfig

__all__ = ["param_record_layout", "ParamRecord", "MemoryImage", "ImageError",
           "MAGIC", "FORMAT_VERSION", "compressed_word_bytes"]

MAGIC = b"ZSKIPIMG"
FORMAT_VERSION = 1
HEADER = struct.Struct("<8sI16sIII32s")


class ImageError(ValueError):
    """A memory image that cannot be used: not an image, corrupt, truncated, or compiled for
    another hardware configuration."""


def compressed_word_bytes(cfg: HardwareConfig, nnz: int) -> int:
    return cfg.bitmap_bytes + (nnz * cfg.weight_bits + 7) // 8


# -- parameter records -----------------------------------------------------------------------

def param_record_layout(cfg: HardwareConfig) -> data.StructLayout:
    """The 128-bit parameter record as the hardware sees it."""
    return data.StructLayout({
        "bias": 32,       # signed; interpreted as int32
        "mult": 32,
        "shift": 8,
        "write": 1,
        "_flags": 7,
        "out_index": cfg.out_index_bits,
        "_reserved": 8 * PARAM_RECORD_BYTES - 80 - cfg.out_index_bits,
    })


@dataclass(frozen=True)
class ParamRecord:
    bias: int
    mult: int
    shift: int
    write: bool
    out_index: int

    def __post_init__(self):
        if not -(1 << 31) <= self.bias < (1 << 31):
            raise ImageError(f"bias {self.bias} does not fit int32")
        if not 0 <= self.mult < (1 << 31):
            raise ImageError(f"multiplier {self.mult} outside [0, 2**31)")
        if not 0 <= self.shift < 64:
            raise ImageError(f"shift {self.shift} outside [0, 64)")
        if not 0 <= self.out_index < (1 << 16):
            raise ImageError(f"out_index {self.out_index} does not fit 16 bits")

    def pack(self) -> bytes:
        return struct.pack("<iIBBH4x", self.bias, self.mult, self.shift, int(self.write),
                           self.out_index)

    @classmethod
    def unpack(cls, b: bytes) -> "ParamRecord":
        bias, mult, shift, flags, out_index = struct.unpack("<iIBBH4x", b)
        return cls(bias, mult, shift, bool(flags & 1), out_index)


# -- the image file --------------------------------------------------------------------------

@dataclass
class MemoryImage:
    """A compiled memory image: DRAM contents, instruction memory contents, manifest.

    ``manifest["programs"]`` maps a program name to ``{"pc": entry, "length": n}``.
    """

    config: HardwareConfig
    dram: bytes
    program: bytes
    manifest: dict = field(default_factory=dict)

    def __post_init__(self):
        B = self.config.dram_bytes_per_cycle
        if len(self.dram) % B:
            raise ImageError(f"DRAM contents of {len(self.dram)} bytes are not whole {B}-byte words")
        if len(self.dram) > self.config.dram_bytes:
            raise ImageError(f"DRAM contents of {len(self.dram)} bytes exceed the configured "
                             f"DRAM of {self.config.dram_bytes} bytes (dram_depth)")
        from .isa import instr_bytes
        n = instr_bytes(self.config)
        if len(self.program) % n:
            raise ImageError(f"program of {len(self.program)} bytes is not whole {n}-byte instructions")
        if len(self.program) // n > self.config.imem_depth:
            raise ImageError(f"program of {len(self.program) // n} instructions exceeds imem_depth "
                             f"{self.config.imem_depth}")

    @property
    def dram_words(self) -> list[int]:
        B = self.config.dram_bytes_per_cycle
        return [int.from_bytes(self.dram[i:i + B], "little") for i in range(0, len(self.dram), B)]

    @property
    def program_words(self) -> list[int]:
        from .isa import program_words
        return program_words(self.config, self.program)

    def entry(self, name: str) -> int:
        progs = self.manifest.get("programs", {})
        if name not in progs:
            raise ImageError(f"image has no program {name!r} (it has: {', '.join(sorted(progs)) or 'none'})")
        return progs[name]["pc"]

    # serialization

    def to_bytes(self) -> bytes:
        man = dict(self.manifest)
        man["config"] = self.config.to_dict()
        mbytes = json.dumps(man, sort_keys=True).encode()
        body = mbytes + self.dram + self.program
        head = HEADER.pack(MAGIC, FORMAT_VERSION, self.config.digest.encode(), len(mbytes),
                           len(self.dram), len(self.program), hashlib.sha256(body).digest())
        return head + body

    def save(self, path) -> None:
        Path(path).write_bytes(self.to_bytes())

    @classmethod
    def from_bytes(cls, blob: bytes, expect: HardwareConfig | None = None,
                   source: str = "memory image") -> "MemoryImage":
        """Parse and verify an image; with ``expect``, refuse one compiled for another config."""
        if len(blob) < HEADER.size:
            if not blob.startswith(MAGIC[:len(blob)]) or not blob:
                raise ImageError(f"{source}: not a zeroskip memory image (no {MAGIC!r} magic)")
            raise ImageError(f"{source}: truncated: {len(blob)} bytes, the header alone is {HEADER.size}")
        magic, version, digest, mlen, dlen, plen, checksum = HEADER.unpack_from(blob)
        if magic != MAGIC:
            raise ImageError(f"{source}: not a zeroskip memory image (magic {magic!r}, expected {MAGIC!r})")
        if version != FORMAT_VERSION:
            raise ImageError(f"{source}: format version {version}, this zeroskip reads version "
                             f"{FORMAT_VERSION}; recompile the model")
        body = blob[HEADER.size:]
        want = mlen + dlen + plen
        if len(body) != want:
            kind = "truncated" if len(body) < want else "has trailing bytes"
            raise ImageError(f"{source}: {kind}: body is {len(body)} bytes, header says {want}")
        if hashlib.sha256(body).digest() != checksum:
            raise ImageError(f"{source}: corrupt: SHA-256 checksum mismatch")
        try:
            manifest = json.loads(body[:mlen].decode())
            config = HardwareConfig.from_dict(manifest.pop("config"))
        except Exception as e:  # noqa: BLE001 - any failure here means a broken manifest
            raise ImageError(f"{source}: corrupt manifest: {e}") from None
        digest = digest.decode(errors="replace")
        if config.digest != digest:
            raise ImageError(f"{source}: corrupt: manifest config digest {config.digest} != header {digest}")
        if expect is not None and expect.digest != digest:
            raise ImageError(f"{source}: compiled for hardware config {digest}, but this hardware is "
                             f"{expect.digest}; recompile it for this config (same --hw)")
        return cls(config, body[mlen:mlen + dlen], body[mlen + dlen:], manifest)

    @classmethod
    def load(cls, path, expect: HardwareConfig | None = None) -> "MemoryImage":
        p = Path(path)
        try:
            blob = p.read_bytes()
        except OSError as e:
            raise ImageError(f"{p}: cannot read memory image: {e.strerror}") from None
        return cls.from_bytes(blob, expect, source=str(p))
