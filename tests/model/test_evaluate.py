"""model/evaluate.py: group specs, bin labels and the per-group breakdown."""

import pytest

from model.evaluate import breakdown, error_rates, group_label, parse_group_spec


def test_parse_group_spec():
    assert parse_group_spec("noise") == ("noise", None)
    assert parse_group_spec("snr_db:10") == ("snr_db", 10.0)
    assert parse_group_spec("duration:0.5") == ("duration", 0.5)
    for bad, match in [(":10", "expected FIELD"), ("snr_db:", "positive number"),
                       ("snr_db:0", "positive number"), ("snr_db:-5", "positive number"),
                       ("snr_db:ten", "positive number"), ("snr_db:inf", "positive number")]:
        with pytest.raises(ValueError, match=match):
            parse_group_spec(bad)


def test_group_label():
    assert group_label("babble", None) == "babble"
    assert group_label(None, 10) == "none"
    assert group_label(True, None) == "True"
    assert group_label(9.99, 10) == "0-10"
    assert group_label(10, 10) == "10-20"
    assert group_label(-0.5, 10) == "-10-0"
    assert group_label(1.26, 0.25) == "1.25-1.5"
    with pytest.raises(ValueError, match="'x' is not a number"):
        group_label("x", 10)
    with pytest.raises(ValueError, match="not a number"):
        group_label(True, 1)


def test_breakdown_groups_and_orders():
    entries = [{"id": "a", "snr": 25.0, "noise": "pink"}, {"id": "b", "snr": None, "noise": "none"},
               {"id": "c", "snr": 5.0, "noise": "pink"}, {"id": "d", "snr": -3.0, "noise": "hum"},
               {"id": "e", "snr": 7.0, "noise": "hum"}]
    rows = [{"ref": "a b", "hyp": "a b"}, {"ref": "c d", "hyp": "c"}, {"ref": "e", "hyp": "f"},
            {"ref": "g h", "hyp": "g h x"}, {"ref": "i", "hyp": "i"}]
    by_snr = breakdown(entries, rows, "snr:10")
    assert [g["group"] for g in by_snr] == ["-10-0", "0-10", "20-30", "none"]
    assert by_snr[1] == {"group": "0-10", **error_rates(["e", "i"], ["f", "i"])}
    assert by_snr[3]["deletions"] == 1 and by_snr[3]["utterances"] == 1
    by_noise = breakdown(entries, rows, "noise")
    assert [g["group"] for g in by_noise] == ["hum", "pink", "none"]
    assert sum(g["utterances"] for g in by_noise) == 5
    with pytest.raises(ValueError, match="no utterance has the field 'voice'; the manifest's "
                                         "fields are id, noise, snr"):
        breakdown(entries, rows, "voice")
    with pytest.raises(ValueError, match="noise:5: utterance a: value 'pink' is not a number"):
        breakdown(entries, rows, "noise:5")
