"""The memory image file: round trip, and every way a bad image is refused."""

import struct

import pytest

from rtl import isa
from rtl.config import HardwareConfig
from rtl.memfmt import HEADER, ImageError, MemoryImage, ParamRecord

TINY = HardwareConfig.tiny()


def image():
    prog = isa.program_bytes(TINY, [isa.matvec(TINY, w_base=0, p_base=0, n_rows=1, n_words=1,
                                               in_base=0, out_base=1), isa.end(TINY)])
    return MemoryImage(TINY, bytes(range(16)), prog, {"programs": {"matvec": {"pc": 0, "length": 2}}})


def test_round_trip(tmp_path):
    p = tmp_path / "x.zsimg"
    image().save(p)
    back = MemoryImage.load(p, expect=TINY)
    assert back.dram == bytes(range(16))
    assert back.entry("matvec") == 0
    assert back.config == TINY
    assert isa.decode(TINY, back.program_words[1])["op"] == isa.Op.END


def test_truncated():
    blob = image().to_bytes()
    with pytest.raises(ImageError, match="truncated"):
        MemoryImage.from_bytes(blob[:-3])
    with pytest.raises(ImageError, match="truncated"):
        MemoryImage.from_bytes(blob[:20])


def test_corrupt_body():
    blob = bytearray(image().to_bytes())
    blob[HEADER.size + 5] ^= 0xFF
    with pytest.raises(ImageError, match="corrupt: SHA-256"):
        MemoryImage.from_bytes(bytes(blob))


def test_not_an_image(tmp_path):
    with pytest.raises(ImageError, match="not a zeroskip memory image"):
        MemoryImage.from_bytes(b"RIFF....WAVEfmt " * 10)
    with pytest.raises(ImageError, match="cannot read"):
        MemoryImage.load(tmp_path / "nope.zsimg")


def test_wrong_version():
    blob = bytearray(image().to_bytes())
    struct.pack_into("<I", blob, 8, 99)
    with pytest.raises(ImageError, match="format version 99"):
        MemoryImage.from_bytes(bytes(blob))


def test_mismatched_config():
    with pytest.raises(ImageError, match="compiled for hardware config .* recompile"):
        MemoryImage.from_bytes(image().to_bytes(), expect=TINY.replace(lanes=4))


def test_missing_program():
    with pytest.raises(ImageError, match="no program 'load'"):
        image().entry("load")


def test_contents_checked_against_config():
    with pytest.raises(ImageError, match="whole 1-byte|exceed"):
        MemoryImage(TINY, bytes(TINY.dram_bytes + 1), b"")
    with pytest.raises(ImageError, match="whole .*-byte instructions"):
        MemoryImage(TINY, b"", b"\x00")


def test_param_record():
    r = ParamRecord(-7, 12345, 33, True, 999)
    assert len(r.pack()) == 16
    assert ParamRecord.unpack(r.pack()) == r
    with pytest.raises(ImageError, match="shift"):
        ParamRecord(0, 1, 64, True, 0)
    with pytest.raises(ImageError, match="multiplier"):
        ParamRecord(0, -1, 0, True, 0)
