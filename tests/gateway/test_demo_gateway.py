"""`station demo --headless --gateway`: the station's vitals through `station gateway` into a
stand-in EHR over MLLP (python-hl7's server), printed as the EHR received them.

Each printed message is parsed again with hl7apy's STRICT v2.5.1 validation, and the station
reports "received" only from the EHR's ACK: in this mode the demo's stand-in practice system
files no clinical message itself.
"""

from __future__ import annotations

import pytest

from tests.gateway.test_gateway_e2e import strict
from tests.test_demo import _station

pytestmark = [pytest.mark.broker, pytest.mark.slow]
HEADER = "# the EHR received over MLLP and answered AA:"


def test_headless_demo_with_the_gateway_prints_each_oru_the_ehr_acked() -> None:
    done = _station(
        "demo", "--headless", "--patients", "2", "--seed", "3", "--gateway", timeout_s=150
    )
    assert done.returncode == 0, done.stderr
    blocks = [b for b in done.stdout.split("\n\n") if b.strip()]
    assert len(blocks) == 2, done.stdout
    mrns = []
    for block in blocks:
        header, *segments = block.strip().split("\n")
        assert header == HEADER
        # One segment per line, as a person reads it.
        assert [s[:3] for s in segments[:4]] == ["MSH", "PID", "PV1", "OBR"]
        assert {s[:3] for s in segments[4:]} <= {"OBX", "OBR", "NTE"}
        # IHE PCD-01's device order first (SNOMED 182777000 monitoring of patient), then any
        # reviewed medication list (LOINC 10160-0 History of Medication use Narrative).
        services = [s.split("|")[4].split("^")[0] for s in segments if s.startswith("OBR")]
        assert services[0] == "182777000" and set(services[1:]) <= {"10160-0"}
        strict("\r".join(segments))
        assert segments[0].split("|")[8] == "ORU^R01^ORU_R01"  # MSH-9
        mrns.append(segments[1].split("|")[3].split("^")[0])  # PID-3.1
    # The demo's fake patients in the order they were roomed (ZZTEST MRNs, never real ones).
    assert mrns == ["TEST100001", "TEST100002"]
    assert "station gateway files vitals" in done.stderr
    # The station showed "received" after each EHR ACK, and nothing else acked the vitals.
    assert done.stderr.count("received by the practice system") == 2
