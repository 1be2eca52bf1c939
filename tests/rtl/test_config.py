"""HardwareConfig: validation names the field, JSON round trip, digest, presets."""

import json

import pytest
from hypothesis import given, strategies as st

from rtl.config import ConfigError, HardwareConfig


@pytest.mark.parametrize("preset", HardwareConfig.PRESETS)
def test_presets_round_trip(preset):
    cfg = HardwareConfig.preset(preset)
    again = HardwareConfig.from_json(cfg.to_json())
    assert again == cfg and again.digest == cfg.digest


def test_default_holds_a_1024x1024_layer_resident():
    cfg = HardwareConfig.default()
    rows_per_lane = 1024 // cfg.lanes
    assert rows_per_lane * (1024 // cfg.k) <= cfg.wsram_depth
    assert cfg.decompressor_keeps_up


def test_digest_changes_with_any_field():
    base = HardwareConfig.tiny()
    assert base.replace(m=1).digest != base.digest
    assert base.replace(clock_hz=1).digest != base.digest
    assert len(base.digest) == 16


def test_frozen():
    with pytest.raises(Exception):
        HardwareConfig.tiny().lanes = 3


@pytest.mark.parametrize("field,value,match", [
    ("lanes", 0, "lanes: must be positive"),
    ("k", 12, "k: must be a power of two"),
    ("k", 4, "k: must be a power of two between 8"),
    ("m", 100, "m: must be between 1 and k"),
    ("weight_bits", 6, "weight_bits: must be 4 or 8"),
    ("act_bits", 16, "act_bits: must be 8"),
    ("acc_bits", 40, "acc_bits: must be between"),
    ("wsram_depth", 1000, "wsram_depth: must be a power of two"),
    ("dram_bytes_per_cycle", 3, "dram_bytes_per_cycle: must be a power of two"),
    ("counter_bits", 8, "counter_bits"),
    ("result_ports", 5, "result_ports"),
    ("lanes", True, "lanes: must be an integer"),
    ("lanes", 2.0, "lanes: must be an integer"),
])
def test_validation_names_the_field(field, value, match):
    with pytest.raises(ConfigError, match=match) as e:
        HardwareConfig.tiny().replace(**{field: value})
    assert e.value.field == field


def test_json_errors():
    with pytest.raises(ConfigError, match="not valid JSON"):
        HardwareConfig.from_json("{lanes: 2")
    with pytest.raises(ConfigError, match="unknown parameter") as e:
        HardwareConfig.from_json(json.dumps({"lanez": 2}))
    assert e.value.field == "lanez"
    with pytest.raises(ConfigError, match="expected an object"):
        HardwareConfig.from_json("[1, 2]")


def test_resolve(tmp_path):
    assert HardwareConfig.resolve("tiny") == HardwareConfig.tiny()
    p = tmp_path / "hw.json"
    p.write_text(HardwareConfig.tiny().replace(lanes=3).to_json())
    assert HardwareConfig.resolve(str(p)).lanes == 3
    with pytest.raises(ConfigError, match="neither a preset"):
        HardwareConfig.resolve(str(tmp_path / "missing.json"))


@given(st.sampled_from([1, 2, 4, 16]), st.sampled_from([8, 16, 64]), st.integers(1, 8),
       st.sampled_from([4, 8]), st.sampled_from([1, 2, 8]))
def test_valid_configs_round_trip(lanes, k, m, wb, b):
    cfg = HardwareConfig(lanes=lanes, k=k, m=m, weight_bits=wb, dram_bytes_per_cycle=b)
    assert HardwareConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.macs_per_cycle == lanes * m
    assert cfg.wword_bits == k * wb
