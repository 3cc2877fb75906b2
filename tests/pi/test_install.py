"""scripts/install-pi and scripts/uninstall-pi: the exact dry-run actions, and a real install into
a throwaway root (systemd-sysusers --root, systemctl --root), run twice, then removed."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from station.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "scripts/install-pi"
UNINSTALL = ROOT / "scripts/uninstall-pi"
STATION = str(Path(sys.executable).with_name("station"))
WANTS = "/etc/systemd/system/multi-user.target.wants"
PACKAGES = (
    "bluez python3-venv python3-pip libgl1-mesa-dri libegl1 libgles2 libgbm1 libdrm2 "
    "libmtdev1 espeak-ng ca-certificates udev"
)

SERIAL_PROFILE = """\
id = "test-oximeter"
[serial]
baud = 9600
vendor_id = "0403"
product_id = 0x6001
"""
BLE_PROFILE = """\
id = "test-cuff"
[ble]
service = "1810"
"""


@pytest.fixture
def profiles(tmp_path: Path) -> Path:
    folder = tmp_path / "profiles"
    folder.mkdir()
    (folder / "oximeter.toml").write_text(SERIAL_PROFILE)
    (folder / "cuff.toml").write_text(BLE_PROFILE)
    return folder


@pytest.fixture
def target(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    return root


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, check=False)


def tree(root: Path) -> dict[str, str]:
    """Every path under root with its mode (and link target): what the install left behind."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = "/" + str(path.relative_to(root))
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            out[rel] = "-> " + os.readlink(path)
        else:
            out[rel] = oct(stat.S_IMODE(info.st_mode))
    return out


def install_actions(root: str) -> list[str]:
    return [
        f"skip packages: --root installs no Debian packages ({PACKAGES})",
        "write /etc/sysusers.d/station.conf (mode 0644, root:root)",
        f"+ systemd-sysusers --root={root} {root}/etc/sysusers.d/station.conf",
        "skip venv: --skip-venv",
        "write /opt/station/docs/deploy-pi.md (mode 0644, root:root)",
        "mkdir /etc/station (mode 0750, root:station)",
        "mkdir /etc/station/credentials (mode 0700, root:root)",
        "mkdir /etc/station/tls (mode 0750, root:station)",
        "write /etc/station/station.toml (mode 0640, root:station)",
        "write /etc/station/credentials/outbox.key (mode 0600, root:root)",
        "write /etc/station/kiosk.env (mode 0644, root:root)",
        "write /etc/udev/rules.d/70-station-serial.rules (mode 0644, root:root)",
        "write /etc/systemd/system/station.service (mode 0644, root:root)",
        "write /etc/systemd/logind.conf.d/station-kiosk.conf (mode 0644, root:root)",
        "write /etc/sysctl.d/90-station-kiosk.conf (mode 0644, root:root)",
        "write /etc/systemd/journald.conf.d/station.conf (mode 0644, root:root)",
        "write /etc/station/previous-default-target (mode 0644, root:root)",
        f"+ ln -sfn /lib/systemd/system/multi-user.target {root}/etc/systemd/system/default.target",
        f"+ systemctl --root={root} mask getty@tty1.service autovt@tty1.service "
        "ctrl-alt-del.target",
        f"+ systemctl --root={root} enable station.service",
        "done: edit /etc/station/station.toml (check it with 'station config check'), put the "
        "TLS files in /etc/station/tls and /etc/station/credentials, then reboot into the kiosk",
    ]


def test_dry_run_into_a_root_prints_every_action_and_changes_nothing(
    target: Path, profiles: Path
) -> None:
    result = run(
        INSTALL,
        "--dry-run",
        "--root",
        target,
        "--skip-venv",
        "--station",
        STATION,
        "--profiles",
        profiles,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == install_actions(str(target))
    assert tree(target) == {}


def test_dry_run_on_the_live_system_names_packages_venv_and_services(profiles: Path) -> None:
    result = run(INSTALL, "--dry-run", "--profiles", profiles)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:6] == [
        f"+ apt-get install -y --no-install-recommends {PACKAGES}",
        "write /etc/sysusers.d/station.conf (mode 0644, root:root)",
        "+ systemd-sysusers /etc/sysusers.d/station.conf",
        "+ python3 -m venv /opt/station/venv",
        # #20: pinned and hash-checked, not whatever `>=` admits today.
        "+ /opt/station/venv/bin/pip install --quiet --require-hashes -r "
        f"{ROOT}/deploy/pi/requirements.lock",
        "+ /opt/station/venv/bin/pip install --quiet --upgrade --no-deps --no-build-isolation "
        f"{ROOT}",
    ]
    assert lines[-9:-1] == [
        "+ systemctl mask getty@tty1.service autovt@tty1.service ctrl-alt-del.target",
        "+ systemctl enable station.service",
        "+ udevadm control --reload",
        "+ udevadm trigger --subsystem-match=tty --action=change",
        "+ sysctl --load /etc/sysctl.d/90-station-kiosk.conf",
        "+ systemctl daemon-reload",
        "+ systemctl restart systemd-journald.service",
        "+ systemctl try-restart station.service",
    ]


def test_install_into_a_throwaway_root_then_again_then_uninstall(
    target: Path, profiles: Path
) -> None:
    args = ("--root", target, "--skip-venv", "--station", STATION, "--profiles", profiles)
    first = run(INSTALL, *args)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == install_actions(str(target))
    files = tree(target)
    assert {
        k: v
        for k, v in files.items()
        if not k.startswith(
            ("/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", "/etc/.pwd")
        )
    } == {
        "/etc": "0o755",
        "/etc/station": "0o750",
        "/etc/station/credentials": "0o700",
        "/etc/station/credentials/outbox.key": "0o600",
        "/etc/station/kiosk.env": "0o644",
        "/etc/station/previous-default-target": "0o644",
        "/etc/station/station.toml": "0o640",
        "/etc/station/tls": "0o750",
        "/etc/sysctl.d": "0o755",
        "/etc/sysctl.d/90-station-kiosk.conf": "0o644",
        "/etc/systemd": "0o755",
        "/etc/systemd/journald.conf.d": "0o755",
        "/etc/systemd/journald.conf.d/station.conf": "0o644",
        "/etc/systemd/logind.conf.d": "0o755",
        "/etc/systemd/logind.conf.d/station-kiosk.conf": "0o644",
        "/etc/systemd/system": "0o755",
        "/etc/systemd/system/autovt@tty1.service": "-> /dev/null",
        "/etc/systemd/system/ctrl-alt-del.target": "-> /dev/null",
        "/etc/systemd/system/default.target": "-> /lib/systemd/system/multi-user.target",
        "/etc/systemd/system/getty@tty1.service": "-> /dev/null",
        "/etc/systemd/system/multi-user.target.wants": "0o755",
        f"{WANTS}/station.service": "-> /etc/systemd/system/station.service",
        "/etc/systemd/system/station.service": "0o644",
        "/etc/sysusers.d": "0o755",
        "/etc/sysusers.d/station.conf": "0o644",
        "/etc/udev": "0o755",
        "/etc/udev/rules.d": "0o755",
        "/etc/udev/rules.d/70-station-serial.rules": "0o644",
        "/opt": "0o755",
        "/opt/station": "0o755",
        "/opt/station/docs": "0o755",
        "/opt/station/docs/deploy-pi.md": "0o644",
    }
    etc = target / "etc"
    passwd = [ln for ln in (etc / "passwd").read_text().splitlines() if ln.startswith("station:")]
    assert len(passwd) == 1
    assert passwd[0].split(":")[4:] == [
        "Rooming station kiosk",
        "/var/lib/station",
        "/usr/sbin/nologin",
    ]
    members = {
        ln.split(":")[0]: ln.split(":")[3] for ln in (etc / "group").read_text().splitlines()
    }
    for group in ("dialout", "bluetooth", "video", "render", "input"):
        assert members[group] == "station", group
    station_gid = int(
        next(
            ln.split(":")[2]
            for ln in (etc / "group").read_text().splitlines()
            if ln.startswith("station:")
        )
    )
    assert (etc / "station/station.toml").stat().st_gid == station_gid
    assert (etc / "systemd/system/station.service").read_bytes() == (
        ROOT / "systemd/station.service"
    ).read_bytes()
    # The sample config is valid and points its secrets at what LoadCredential= hands over.
    settings = load_settings(etc / "station/station.toml")
    assert settings.storage.outbox_key_file == Path(
        "/run/credentials/station.service/station_outbox.key"
    )
    assert settings.broker.key_file == Path("/run/credentials/station.service/station_tls.key")
    key = (etc / "station/credentials/outbox.key").read_bytes()
    assert len(key) == 32
    assert (etc / "station/kiosk.env").read_text().splitlines()[-1] == "KCFG_GRAPHICS_ROTATION=0"
    assert (etc / "udev/rules.d/70-station-serial.rules").read_text().splitlines()[-1] == (
        'SUBSYSTEM=="tty", ATTRS{idVendor}=="0403", ATTRS{idProduct}=="6001", GROUP="dialout", '
        'MODE="0660", ENV{ID_MM_DEVICE_IGNORE}="1", SYMLINK+="station/test-oximeter-%n"'
    )

    # The biomed tech edits the config (rotated screen); a re-run keeps it and the key.
    config = etc / "station/station.toml"
    config.write_text(config.read_text().replace("[display]\n", "[display]\nrotation = 90\n"))
    second = run(INSTALL, *args)
    assert second.returncode == 0, second.stderr
    assert [ln for ln in second.stdout.splitlines() if ln.startswith("keep")] == [
        "keep /etc/station/station.toml (exists)",
        "keep /etc/station/credentials/outbox.key (exists; a new key would orphan queued vitals)",
    ]
    assert (etc / "station/credentials/outbox.key").read_bytes() == key
    assert "rotation = 90" in config.read_text()
    assert (etc / "station/kiosk.env").read_text().splitlines()[-1] == "KCFG_GRAPHICS_ROTATION=90"

    # Uninstall keeps the config, the key and (here absent) the outbox; --purge takes them too.
    before = tree(target)
    dry = run(UNINSTALL, "--dry-run", "--root", target)
    assert dry.returncode == 0, dry.stderr
    assert tree(target) == before
    removed = run(UNINSTALL, "--root", target)
    assert removed.returncode == 0, removed.stderr
    assert dry.stdout == removed.stdout
    left = {
        k
        for k in tree(target)
        if not k.startswith(
            ("/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", "/etc/.pwd")
        )
    }
    assert sorted(k for k in left if "station" in k) == [
        "/etc/station",
        "/etc/station/credentials",
        "/etc/station/credentials/outbox.key",
        "/etc/station/station.toml",
        "/etc/station/tls",
        "/etc/sysusers.d/station.conf",
    ]
    assert not (etc / "systemd/system/default.target").exists()
    purged = run(UNINSTALL, "--root", target, "--purge")
    assert purged.returncode == 0, purged.stderr
    assert sorted(k for k in tree(target) if "station" in k) == []
    assert "station:" not in (etc / "passwd").read_text()
    assert "\nstation:" not in (etc / "group").read_text()


def test_bad_options_are_refused_with_what_was_expected(target: Path) -> None:
    result = run(INSTALL, "--frobnicate")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "install-pi: unknown option --frobnicate (expected --dry-run, --root DIR, --skip-venv, "
        "--station CMD, --profiles DIR)\n"
    )
    result = run(INSTALL, "--root", target / "missing")
    assert (result.returncode, result.stderr) == (
        2,
        f"install-pi: --root {target / 'missing'} is not a directory\n",
    )


def test_udev_rules_refuse_a_bad_usb_id(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text('id = "x"\n[serial]\nvendor_id = "04x3"\nproduct_id = 1\n')
    result = run(sys.executable, ROOT / "scripts/udev-rules", tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "udev-rules: bad.toml.serial: expected a USB id like \"0403\" or 0x0403, got '04x3'\n"
    )


def test_secrets_are_written_beside_their_destination_never_through_tmp(
    target: Path, profiles: Path
) -> None:
    # #20: the outbox key went through a mktemp file in /tmp (on the SD card on Raspberry Pi
    # OS). With no usable temporary directory at all, the install still writes every file.
    env = {**os.environ, "TMPDIR": str(target / "no-such-tmp")}
    done = subprocess.run(
        [str(INSTALL), "--root", str(target), "--skip-venv", "--station", STATION,
         "--profiles", str(profiles)],
        capture_output=True, text=True, check=False, env=env,
    )
    assert done.returncode == 0, done.stderr
    key = target / "etc/station/credentials/outbox.key"
    assert len(key.read_bytes()) == 32 and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert not list((target / "etc/station/credentials").glob(".install-pi.*"))


def test_a_rotation_that_is_not_a_right_angle_is_refused(target: Path, profiles: Path) -> None:
    # #20: the value written to kiosk.env (read by Kivy as KCFG_GRAPHICS_ROTATION) was not
    # checked; Kivy takes 0, 90, 180 or 270 (kivy.config, [graphics] rotation).
    conf = target / "etc/station/station.toml"
    conf.parent.mkdir(parents=True)
    conf.write_text('[display]\nrotation = "45\\nKCFG_KIVY_EXIT_ON_ESCAPE=1"\n')
    done = run(INSTALL, "--root", target, "--skip-venv", "--station", STATION, "--profiles",
               profiles)
    assert done.returncode == 2
    assert "[display] rotation in /etc/station/station.toml is '45" in done.stderr
    assert "expected 0, 90, 180 or 270" in done.stderr
    assert not (target / "etc/station/kiosk.env").exists()


def test_the_pi_lock_pins_every_runtime_dependency_with_hashes() -> None:
    # deploy/pi/requirements.lock (scripts/lock-pi) must cover [project] dependencies; pip's
    # --require-hashes refuses any line without a hash (pip docs, "Hash-checking mode").
    import tomllib

    wanted = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=!~ \[;]", d, maxsplit=1)[0].lower().replace("_", "-").replace(
        ".", "-") for d in wanted}
    lock = (ROOT / "deploy/pi/requirements.lock").read_text()
    pinned = dict(re.findall(r"^([a-z0-9][a-z0-9._-]*)==(\S+) \\", lock, flags=re.M))
    assert names <= {n.replace(".", "-") for n in pinned}, names - set(pinned)
    body = lock[re.search(r"^[a-z0-9]", lock, flags=re.M).start():]  # type: ignore[union-attr]
    blocks = re.split(r"\n(?=[a-z0-9])", body.strip())
    assert len(blocks) == len(pinned)
    assert all("--hash=sha256:" in block for block in blocks)
    assert not re.search(r"^--(find-links|index-url|extra-index-url)", lock, flags=re.M)


def test_the_unit_forbids_core_files_and_lets_the_lobby_speak() -> None:
    unit = (ROOT / "systemd/station.service").read_text().splitlines()
    assert "LimitCORE=0" in unit  # a core of the kiosk would hold patient data and keys
    assert "DeviceAllow=char-alsa rw" in unit  # espeak-ng plays through ALSA
    groups = next(line for line in unit if line.startswith("SupplementaryGroups="))
    assert "audio" in groups.split("=", 1)[1].split()
