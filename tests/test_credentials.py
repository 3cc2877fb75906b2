"""Issue #17 item 3: credentials never in plain text. `station credentials` (secrets on standard
input, as a script or a test gives them) writes Argon2id hashes only, mode 0600; the hashes
verify with argon2-cffi's own `PasswordHasher` (RFC 9106 Argon2id, the PHC string format);
`station run` refuses a file with a plain-text PIN and says how to convert it; the PIN policy
of docs/deploy-pi.md (6+ digits, no repeated digit or run — NIST SP 800-63B §3.1.1.2 asks to
refuse "repetitive or sequential characters") is enforced.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from station.app.credentials import credentials_path, load_credentials

MA_PIN, BADGE, STAFF_PIN, BIOMED_PIN = "482913", "BDG-77A1-X9", "630581", "735160"


def station(
    *args: str, stdin: str = "", cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "station", *args], input=stdin,
                          capture_output=True, text=True, timeout=60, check=False, cwd=cwd)


def test_the_cli_writes_hashes_only_that_argon2_itself_verifies(tmp_path: Path) -> None:
    path = tmp_path / "credentials.toml"
    f = ("--file", str(path))
    assert station("credentials", "add-ma", "ma-0042", *f, stdin=f"{MA_PIN}\n").returncode == 0
    assert station("credentials", "add-ma", "ma-0043", "--badge", *f,
                   stdin=f"{BADGE}\n").returncode == 0
    assert station("credentials", "set-pin", "staff", *f, stdin=f"{STAFF_PIN}\n").returncode == 0
    assert station("credentials", "set-pin", "biomed", *f,
                   stdin=f"{BIOMED_PIN}\n").returncode == 0
    raw = path.read_text()
    for secret in (MA_PIN, BADGE, STAFF_PIN, BIOMED_PIN):
        assert secret not in raw
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = tomllib.loads(raw)
    hasher = PasswordHasher()  # the library's own verifier reads the parameters from the hash
    assert [(e["id"], e["kind"]) for e in data["ma_hash"]] == [
        ("ma-0042", "pin"), ("ma-0043", "badge")]
    assert hasher.verify(data["ma_hash"][0]["hash"], MA_PIN)
    assert hasher.verify(data["ma_hash"][1]["hash"], BADGE)
    assert hasher.verify(data["staff_pin_hash"], STAFF_PIN)
    assert hasher.verify(data["biomed_pin_hash"], BIOMED_PIN)
    assert all(h.startswith("$argon2id$v=19$") for h in
               (data["staff_pin_hash"], data["biomed_pin_hash"]))
    # Each its own salt: the same PIN twice hashes differently.
    assert station("credentials", "remove", "ma-0042", *f).returncode == 0
    assert station("credentials", "add-ma", "ma-0042", *f, stdin=f"{MA_PIN}\n").returncode == 0
    again = tomllib.loads(path.read_text())["ma_hash"][-1]["hash"]
    assert again != data["ma_hash"][0]["hash"]
    listed = station("credentials", "list", *f)
    assert listed.stdout == ("ma ma-0043 (badge)\nma ma-0042 (pin)\nstaff PIN: set\n"
                             "biomed PIN: set\n")
    matcher = load_credentials(path).ma_matcher()
    assert matcher is not None
    assert (matcher(MA_PIN), matcher(BADGE), matcher("000000")) == ("ma-0042", "ma-0043", None)


def test_weak_or_shared_pins_are_refused(tmp_path: Path) -> None:
    f = ("--file", str(tmp_path / "credentials.toml"))
    for pin, why in (("4321", "a PIN has at least 6 digits; got 4"),
                     ("111111", "a PIN is not one digit repeated or a run like 123456"),
                     ("234567", "a PIN is not one digit repeated or a run like 123456"),
                     ("48a913", "a PIN is digits only")):
        done = station("credentials", "add-ma", "ma-1", *f, stdin=f"{pin}\n")
        assert (done.returncode, done.stderr) == (
            2, f"station: not accepted: {why}; nothing written\n")
    assert station("credentials", "set-pin", "biomed", *f, stdin=f"{BIOMED_PIN}\n").returncode == 0
    shared = station("credentials", "add-ma", "ma-1", *f, stdin=f"{BIOMED_PIN}\n")
    assert shared.stderr == ("station: not accepted: that PIN is already the biomed PIN's; "
                             "nothing written\n")


def test_station_run_refuses_a_plain_text_pin_and_says_how_to_convert(tmp_path: Path) -> None:
    config = tmp_path / "station.toml"
    config.write_text('[station]\nsite = "test-clinic"\nstation_id = "exam-1"\n')
    creds = tmp_path / "credentials.toml"
    creds.write_text(f'staff_pin = "{STAFF_PIN}"\n\n[ma]\n"{MA_PIN}" = "ma-0042"\n')
    creds.chmod(0o600)
    done = station("run", "--config", str(config))
    assert done.returncode == 2
    assert done.stderr == (
        f"{creds}: [ma]: 1 badge/PIN entries: stored in plain text; PINs and badge ids must be "
        f"stored as hashes\n"
        f"{creds}: staff_pin: stored in plain text; PINs and badge ids must be stored as hashes\n"
        f"{creds}: convert the file in place with `station credentials convert --file {creds}` "
        "(it replaces each PIN and badge id by its Argon2id hash), or enter them again with "
        "`station credentials add-ma ID` / `station credentials set-pin staff|biomed`\n"
        "station: refusing to start without credentials\n"
    )
    converted = station("credentials", "convert", "--file", str(creds))
    assert converted.returncode == 0
    text = creds.read_text()
    assert MA_PIN not in text and STAFF_PIN not in text
    loaded = load_credentials(creds)  # what `station run` reads now passes
    assert loaded.plain_fields() == []
    staff = loaded.staff_matcher()
    assert staff is not None and staff(STAFF_PIN) and not staff("630582")


def test_unlock_clears_a_roles_lockout(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "lockout.json").write_text(
        '{"version": 1, "roles": {"ma": {"failures": 9, '
        '"locked_until": "2099-01-01T00:00:00+00:00"}}}')
    config = tmp_path / "station.toml"
    config.write_text('[station]\nsite = "test-clinic"\nstation_id = "exam-1"\n\n'
                      f'[storage]\nstate_dir = "{state}"\n')
    done = station("credentials", "unlock", "ma", "--config", str(config),
                   cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, "ma: lockout cleared\n")
    assert '"ma": {"failures": 0, "locked_until": null}' in (state / "lockout.json").read_text()
    assert os.stat(state / "lockout.json").st_mode & 0o077 == 0


def test_a_credentials_file_others_can_read_is_refused(tmp_path: Path) -> None:
    # #20: credentials.toml's mode was never checked; hashes of 6-digit PINs are still worth a
    # brute force to whoever can read them.
    config = tmp_path / "station.toml"
    config.write_text('[station]\nsite = "test-clinic"\nstation_id = "exam-1"\n')
    creds = tmp_path / "credentials.toml"
    creds.write_text("")
    creds.chmod(0o644)
    done = station("run", "--config", str(config))
    assert done.returncode == 2
    assert f"{creds}: mode 644: readable by others; expected 600 (or 400) — fix with: chmod " \
           f"600 {creds}" in done.stderr


def test_the_service_reads_what_systemd_handed_over(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # systemd.exec(5), LoadCredential=ID:PATH with a directory: each file appears as
    # $CREDENTIALS_DIRECTORY/ID_<file>; the unit hands /etc/station/credentials over as
    # "station", so credentials.toml there is station_credentials.toml.
    handed = tmp_path / "run-credentials"
    handed.mkdir()
    (handed / "station_credentials.toml").write_text("")
    monkeypatch.delenv("STATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(handed))
    assert credentials_path(tmp_path / "station.toml") == handed / "station_credentials.toml"
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")
    (tmp_path / "credentials").mkdir()  # the LoadCredential= source, as install-pi makes it
    assert credentials_path(tmp_path / "station.toml") == tmp_path / "credentials" / \
        "credentials.toml"
