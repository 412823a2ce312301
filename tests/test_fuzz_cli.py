"""Issue 9, Must show 3: `hkp-fuzz --json` prints the fields docs/fuzzing.md documents,
and the exit statuses are the documented ones (0 clean, 1 anomaly, 2 usage, 3 no target)."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hkp_fuzz.cli import main

from .fuzz_broken_server import BrokenServer

REPO = Path(__file__).resolve().parents[1]
DOC = (REPO / "docs" / "fuzzing.md").read_text()
SECRET = "broken-secret"
NAI = b"mn@example.net"
HMK = bytes(range(10, 74))


def documented_fields() -> set[str]:
    section = DOC.split("## JSON report", 1)[1].split("\n## ", 1)[0]
    table = section.split("| field | meaning |", 1)[1].split("\n\n", 1)[0]
    return set(re.findall(r"^\| `([a-z_]+)` \|", table, re.M))


def documented_list(command: str) -> set[str]:
    match = re.search(rf"`{command}`\s+prints `\{{([^}}]+)\}}`", DOC.replace("\n", " "))
    assert match, command
    return {name.strip() for name in match.group(1).split(",")}


@pytest.fixture
def broken() -> Iterator[BrokenServer]:
    with BrokenServer(SECRET.encode(), {NAI: HMK}) as server:
        yield server


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    capsys.readouterr()
    code = main(list(args))
    out = capsys.readouterr().out
    return code, json.loads(out) if "--json" in args and out else out


def args_for(tmp_path: Path, server: BrokenServer) -> list[str]:
    hmk = tmp_path / "mn.hmk"
    hmk.write_text("0x" + HMK.hex())
    return ["--secret", SECRET, "--nai", NAI.decode(), "--hmk-file", str(hmk),
            "--timeout", "0.3", "--probe-timeout", "0.2", "--json"]  # fmt: skip


def test_json_fields_and_exit_statuses_0_and_1(
    broken: BrokenServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = args_for(tmp_path, broken)
    code, clean = run_cli(capsys, "radius", broken.address, *common, "--cases", "1")
    assert code == 0 and clean["anomalies"] == []
    assert set(clean) == documented_fields()
    assert set(clean["anomaly_counts"]) == {
        "crash", "hang", "wrong-accept", "wrong-key", "malformed-reply", "slow", "memory"
    }  # fmt: skip

    out = tmp_path / "out"
    cmd = ["--restart-command", broken.restart_command, "--out", str(out)]
    code, found = run_cli(capsys, "radius", broken.address, *common, *cmd, "--cases", "200")
    assert code == 1 and set(found) == documented_fields()
    anomaly = found["anomalies"][0]
    assert set(anomaly) == {"oracle", "seed", "index", "chain", "detail", "file"}
    assert Path(anomaly["file"]).is_file()
    assert Path(anomaly["file"]).with_suffix(".radclient").is_file()
    assert found["anomaly_counts"][anomaly["oracle"]] >= 1
    assert sum(found["outcomes"].values()) == found["cases"]
    assert list(out.glob("corpus/*.json"))

    restart = ["--restart-command", broken.restart_command]
    code, replayed = run_cli(capsys, "replay", anomaly["file"], *common, *restart)
    assert code == 1
    assert set(replayed) == documented_fields() | {"expected_oracle", "reproduced"}
    code, minimized = run_cli(
        capsys, "minimize", anomaly["file"], *common, *restart, "--budget", "3"
    )
    assert code == 1 and set(minimized) == documented_list("minimize")
    code, dry = run_cli(capsys, "radius", broken.address, *common, "--dry-run", "--cases", "5")
    assert code == 0 and set(dry) == documented_list("--dry-run")


def test_exit_status_2_on_usage_errors(
    broken: BrokenServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = args_for(tmp_path, broken)
    assert main(["radius", broken.address, "--cases", "1"]) == 2  # no --secret
    assert main(["radius", "no:such:endpoint:", "--secret", "s"]) == 2
    assert main(["radius", broken.address, *common, "--window", "999"]) == 2
    bad = tmp_path / "bad.hmk"
    bad.write_text("not hex\n")
    assert main(["radius", broken.address, "--secret", "s", "--hmk-file", str(bad)]) == 2
    assert main(["radius", broken.address, "--secret", "s", "--dictionary", "/nonexistent"]) == 2
    assert main(["replay", str(tmp_path / "missing.json"), "--secret", "s"]) == 2
    (tmp_path / "other.json").write_text("{}")
    assert main(["replay", str(tmp_path / "other.json"), "--secret", "s"]) == 2
    with pytest.raises(SystemExit) as exc:  # argparse: unknown option
        main(["radius", broken.address, "--no-such-option"])
    assert exc.value.code == 2
    assert "hkp-fuzz:" in capsys.readouterr().err


def test_exit_status_3_when_nothing_listens_at_the_target() -> None:
    """The liveness probe before the first case: a port nothing listens on (ICMP port
    unreachable, known at once) means no target, exit 3, and no case is sent."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    code = main(["radius", f"127.0.0.1:{port}", "--secret", "s", "--probe-timeout", "5"])
    assert code == 3


def test_console_script_help_has_examples() -> None:
    script = shutil.which("hkp-fuzz", path=str(Path(sys.executable).parent))
    assert script, "the hkp-fuzz console script is not installed (setup.cfg entry point)"
    done = subprocess.run([script, "--help"], capture_output=True, text=True, check=True)
    assert "examples:" in done.stdout and "hkp-fuzz replay" in done.stdout
    assert "exit status" in done.stdout
