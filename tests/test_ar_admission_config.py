"""Issue 15: hkp-ar's [admission] section and [policy] max_keys_per_nai: defaults are
the role's (docs/ar.md), every error names the setting, enabled = no turns it off."""

from __future__ import annotations

from pathlib import Path

import pytest

from ar_proxy.config import DEFAULT_EXCHANGE_LINES, load_config
from hkp_radius.ar.admission import AdmissionConfig
from hkp_radius.ar.config import MAX_KEYS_PER_NAI
from hkp_radius.errors import ConfigError

from .ar_config_files import MINIMAL, write_config


def test_default_admission_and_key_bound(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, MINIMAL))
    assert config.admission == AdmissionConfig()
    assert config.exchange_lines == DEFAULT_EXCHANGE_LINES
    assert config.role.max_keys_per_nai == MAX_KEYS_PER_NAI == 2


def test_settings_are_read(tmp_path: Path) -> None:
    text = (
        "[admission]\nsource_rate = 5\nsource_burst = 7\nnai_rate = 2\nnai_burst = 3\n"
        "max_in_flight = 9\nreserved_for_known = 2\nknown_time = 60\nmax_tracked = 100\n"
        "summary_interval = 2.5\nexchange_lines = 0\n[policy]\nmax_keys_per_nai = 1\n"
    )
    config = load_config(write_config(tmp_path, MINIMAL + text))
    assert config.admission == AdmissionConfig(5, 7, 2, 3, 9, 2, 60, 100, 2.5)
    assert config.exchange_lines == 0 and config.role.max_keys_per_nai == 1


def test_enabled_no_turns_admission_off(tmp_path: Path) -> None:
    assert (
        load_config(write_config(tmp_path, MINIMAL + "[admission]\nenabled = no\n")).admission
        is None
    )


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[admission]\nsource_rate = 0\n", "[admission] source_rate = '0': must be from"),
        ("[admission]\nsource_burst = lots\n", "[admission] source_burst = 'lots'"),
        ("[admission]\nmax_in_flight = 4\nreserved_for_known = 4\n", "reserved_for_known must"),
        ("[admission]\nflood = no\n", "unknown setting 'flood'"),
        ("[policy]\nmax_keys_per_nai = 0\n", "[policy] max_keys_per_nai = '0'"),
    ],
)
def test_errors_name_the_setting(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(write_config(tmp_path, MINIMAL + text))
    assert named in str(error.value)
