"""Checks a FHIR resource against the real US Core StructureDefinitions (vendored beside this
file) with an independent FHIRPath engine (fhirpathpy) — never with the station's own rules.

For each profile a resource claims, in a given US Core version, it walks the profile and its
US Core base profiles (their source differentials) and checks every element: cardinality
(min/max, per parent, slices included), pattern[x]/fixed[x] values, required bindings whose
value set is written out below (with its source), and every constraint, evaluated with
fhirpathpy on the R4 model. The base invariants of FHIR R4 Observation and the vital-signs
profile (obs-6, obs-7, vs-1..3, dom-2..6) come from a published US Core snapshot, which
carries them with their FHIRPath expressions.

Two deliberate departures, both stricter than or equal to the expressions, never looser:
- ele-1 ("hasValue() or children()") is not implemented by fhirpathpy; in JSON it means no
  empty object, array, string or null anywhere, which `structural_problems` checks directly.
- `$this is DateTime` (us-core-1) is System.DateTime in fhirpathpy, so FHIR dateTime values
  never match and the invariant would hold vacuously; it is evaluated a second time with the
  FHIR primitive type `dateTime`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from fhirpathpy import evaluate
from fhirpathpy.models import models

HERE = Path(__file__).parent / "us-core"
VERSIONS = ("6.1.0", "7.0.0", "8.0.0")
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
VITAL_SIGNS_BASE = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
R4 = models["r4"]
_QUIET = {"traceFn": lambda label, value: None}  # dom-3 calls trace(); keep the output clean

# Required bindings met in these profiles, with the value sets' content from the FHIR R4
# specification (hl7.org/fhir/R4/valueset-ucum-bodytemp.html, -ucum-bodyweight.html,
# -ucum-bodylength.html: "Expansion" sections).
REQUIRED_VALUE_SETS: dict[str, frozenset[str]] = {
    "http://hl7.org/fhir/ValueSet/ucum-bodytemp|4.0.1": frozenset({"Cel", "[degF]"}),
    "http://hl7.org/fhir/ValueSet/ucum-bodyweight|4.0.1": frozenset({"kg", "[lb_av]", "g"}),
    "http://hl7.org/fhir/ValueSet/ucum-bodylength|4.0.1": frozenset({"cm", "[in_i]"}),
    # hl7.org/fhir/R4/valueset-medicationrequest-status.html, -medicationrequest-intent.html,
    # -allergyintolerance-clinical.html, -allergyintolerance-verification.html (all codes of
    # their code systems, "Content Logical Definition").
    "http://hl7.org/fhir/ValueSet/medicationrequest-status": frozenset({
        "active", "on-hold", "cancelled", "completed", "entered-in-error", "stopped", "draft",
        "unknown"}),
    "http://hl7.org/fhir/ValueSet/medicationrequest-intent": frozenset({
        "proposal", "plan", "order", "original-order", "reflex-order", "filler-order",
        "instance-order", "option"}),
    "http://hl7.org/fhir/ValueSet/allergyintolerance-clinical": frozenset({
        "active", "inactive", "resolved"}),
    "http://hl7.org/fhir/ValueSet/allergyintolerance-verification": frozenset({
        "unconfirmed", "confirmed", "refuted", "entered-in-error"}),
    # US Core's own, from its source at the 6.1.0 tag
    # (input/resources/ValueSet-us-core-observation-smoking-status-status.json, "compose").
    "http://hl7.org/fhir/us/core/ValueSet/us-core-observation-smoking-status-status": frozenset({
        "final", "entered-in-error"}),
}


@cache
def structure(version: str, url: str) -> dict[str, Any]:
    name = url.removeprefix(US_CORE)
    loaded: dict[str, Any] = json.loads(
        (HERE / version / f"StructureDefinition-{name}.json").read_text(encoding="utf-8")
    )
    return loaded


@cache
def r4_snapshot() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        (HERE / "r4-vitalsigns-invariants-snapshot.json").read_text(encoding="utf-8")
    )
    return loaded


def chain(version: str, url: str) -> list[dict[str, Any]]:
    """The profile and its US Core base profiles, most specific first."""
    out = [structure(version, url)]
    while out[-1]["baseDefinition"].startswith(US_CORE):
        out.append(structure(version, out[-1]["baseDefinition"]))
    return out


# ------------------------------------------------------------------------- element selection


def _steps(element_id: str) -> list[tuple[str, str | None]]:
    """'Observation.component:systolic.code' -> [('component', 'systolic'), ('code', None)]."""
    parts = element_id.split(".")[1:]
    out: list[tuple[str, str | None]] = []
    for part in parts:
        name, _, slice_name = part.partition(":")
        out.append((name, slice_name or None))
    return out


def _children(node: Any, name: str) -> list[Any]:
    if not isinstance(node, dict):
        return []
    if name.endswith("[x]"):
        prefix = name[:-3]
        values = [
            v for k, v in node.items() if k.startswith(prefix) and k[len(prefix) :][:1].isupper()
        ]
    else:
        values = [node[name]] if name in node else []
    flat: list[Any] = []
    for value in values:
        flat.extend(value if isinstance(value, list) else [value])
    return flat


def _contains(value: Any, pattern: Any) -> bool:
    """FHIR pattern[x] matching: every pattern property is present (arrays: some item)."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            _contains(value.get(k), v) for k, v in pattern.items()
        )
    if isinstance(pattern, list):
        items = value if isinstance(value, list) else [value]
        return all(any(_contains(item, p) for item in items) for p in pattern)
    return bool(value == pattern)


def _fixed_and_patterns(element: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(k, v) for k, v in element.items() if k.startswith(("pattern", "fixed"))]


def _slice_matchers(sd: dict[str, Any], slice_id: str) -> list[tuple[list[str], Any]]:
    """What makes an item a member of a slice: its own pattern and its children's fixed values."""
    matchers: list[tuple[list[str], Any]] = []
    for element in sd["differential"]["element"]:
        eid = element["id"]
        if eid == slice_id or eid.startswith(slice_id + "."):
            rel = eid[len(slice_id):].lstrip(".").split(".") if eid != slice_id else []
            for _, value in _fixed_and_patterns(element):
                matchers.append((rel, value))
    return matchers


def _at(node: Any, rel: list[str]) -> list[Any]:
    nodes = [node]
    for name in rel:
        nodes = [c for n in nodes for c in _children(n, name)]
    return nodes


def _groups(
    sd: dict[str, Any], resource: dict[str, Any], element_id: str
) -> Iterator[tuple[Any, list[Any]]]:
    """(parent, the items at this element under that parent) for every existing parent."""
    parents: list[Any] = [resource]
    steps = _steps(element_id)
    prefix = element_id.split(".", maxsplit=1)[0]
    for index, (name, slice_name) in enumerate(steps):
        prefix = f"{prefix}.{name}" + (f":{slice_name}" if slice_name else "")
        groups = []
        for parent in parents:
            items = _children(parent, name)
            if slice_name is not None:
                matchers = _slice_matchers(sd, prefix)
                if not matchers:
                    items = []  # an open slice with no discriminating value: nothing to check
                else:
                    items = [
                        item for item in items
                        if all(any(_contains(v, m) for v in _at(item, rel)) for rel, m in matchers)
                    ]
            groups.append((parent, items))
        if index == len(steps) - 1:
            yield from groups
            return
        parents = [item for _, items in groups for item in items]


# -------------------------------------------------------------------------------- the checks


def _evaluate(resource: dict[str, Any], path: str, expression: str) -> list[Any]:
    return list(
        evaluate(resource, f"{path}.all({expression})", {"resource": resource}, R4, _QUIET)
    )


def _constraint_holds(resource: dict[str, Any], element_id: str, expression: str) -> bool:
    path = element_id.split(":", maxsplit=1)[0].replace("[x]", "")
    if ":" in element_id:
        return False  # a constraint on a slice is not evaluated here: report it, never pass it
    expressions = [expression]
    if "is DateTime" in expression:
        expressions.append(expression.replace("is DateTime", "is dateTime"))
    return all(_evaluate(resource, path, e) == [True] for e in expressions)


def element_problems(
    sd: dict[str, Any], element: dict[str, Any], resource: dict[str, Any]
) -> list[str]:
    eid = element["id"]
    where = f"{sd['id']} {eid}"
    problems: list[str] = []
    has_parent = "." in eid
    for parent, items in _groups(sd, resource, eid) if has_parent else [(None, [resource])]:
        del parent
        low, high = element.get("min"), element.get("max")
        if low is not None and len(items) < low:
            problems.append(f"{where}: {len(items)} present, min {low}")
        if high not in (None, "*") and len(items) > int(high):
            problems.append(f"{where}: {len(items)} present, max {high}")
        for key, value in _fixed_and_patterns(element):
            for item in items:
                ok = _contains(item, value) if key.startswith("pattern") else item == value
                if not ok:
                    problems.append(f"{where}: {key} {value!r} not met by {item!r}")
        binding = element.get("binding") or {}
        if binding.get("strength") == "required" and items:
            allowed = REQUIRED_VALUE_SETS.get(binding["valueSet"])
            if allowed is None:
                problems.append(f"{where}: required binding {binding['valueSet']} not known here")
            else:
                for item in items:
                    codes = [item] if isinstance(item, str) else [
                        c.get("code") for c in item.get("coding", [])]
                    if not set(codes) & allowed:
                        problems.append(f"{where}: {codes} not in {binding['valueSet']}")
    for constraint in element.get("constraint") or []:
        if constraint.get("severity", "error") != "error":
            continue
        if not _constraint_holds(resource, eid, constraint["expression"]):
            problems.append(f"{where}: {constraint['key']} fails: {constraint['expression']}")
    return problems


def base_invariant_problems(resource: dict[str, Any], vital_signs: bool) -> list[str]:
    """FHIR R4 Observation (obs-*, dom-*) and, for vital signs, the vs-* invariants."""
    problems: list[str] = []
    seen: set[tuple[str, str]] = set()
    for element in r4_snapshot()["snapshot"]["element"]:
        eid = element["id"]
        if ":" in eid:
            continue
        for constraint in element.get("constraint") or []:
            key = constraint["key"]
            if constraint["severity"] != "error" or key in ("ele-1", "ext-1"):
                continue  # ele-1: structural_problems; ext-1: no extensions are sent
            if key.startswith("vs-") and not vital_signs:
                continue
            if (key, eid) in seen:
                continue
            seen.add((key, eid))
            if not _constraint_holds(resource, eid, constraint["expression"]):
                problems.append(f"R4 {eid}: {key} fails: {constraint['expression']}")
    return problems


def structural_problems(value: Any, where: str = "") -> list[str]:
    """ele-1 in JSON: no empty object, array or string, and no null, anywhere."""
    if value is None or value in ("", [], {}):
        return [f"{where or '(root)'}: empty (ele-1)"]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in structural_problems(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in structural_problems(v, f"{where}[{i}]")]
    return []


def problems(resource: dict[str, Any], version: str) -> list[str]:
    """Every way the resource breaks the US Core profiles it claims, in that version."""
    found = structural_problems(resource)
    claimed = [p for p in (resource.get("meta") or {}).get("profile", []) if p.startswith(US_CORE)]
    vital_signs = False
    for url in claimed:
        for sd in chain(version, url):
            vital_signs = vital_signs or sd["baseDefinition"] == VITAL_SIGNS_BASE
            for element in sd["differential"]["element"]:
                found += element_problems(sd, element, resource)
    found += base_invariant_problems(resource, vital_signs)
    return found


def quantities(value: Any) -> Iterator[dict[str, Any]]:
    """Every Quantity-like object (value + system) in a resource, for the UCUM check."""
    if isinstance(value, dict):
        if "value" in value and "system" in value:
            yield value
        for v in value.values():
            yield from quantities(v)
    elif isinstance(value, list):
        for v in value:
            yield from quantities(v)
