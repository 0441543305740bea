"""constraints.txt is the tested lock: exactly the distributions a fresh `pip install -e '.[test]'` brings,
at the versions installed here. Unused pins and missing pins both fail (regenerate with `make lock`)."""

from __future__ import annotations

import re
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from shared.config import REPO_ROOT


def _locked() -> dict[str, str]:
    pins = {}
    for line in (REPO_ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not an exact pin"
            pins[canonicalize_name(name)] = version.strip()
    return pins


def _closure(project: str, extras: set[str]) -> dict[str, str]:
    """Every distribution the project needs (with these extras), transitively, with its installed version."""
    found: dict[str, str] = {}
    pending = [(project, frozenset(extras))]
    seen = set()
    while pending:
        name, wanted = pending.pop()
        if (canonicalize_name(name), wanted) in seen:
            continue
        seen.add((canonicalize_name(name), wanted))
        distribution = metadata.distribution(name)
        for text in distribution.requires or []:
            requirement = Requirement(text)
            environments = [{"extra": extra} for extra in wanted] or [{"extra": ""}]
            if requirement.marker and not any(requirement.marker.evaluate(env) for env in environments):
                continue
            key = canonicalize_name(requirement.name)
            found[key] = metadata.version(requirement.name)
            pending.append((requirement.name, frozenset(requirement.extras)))
    return found


def test_the_lock_pins_exactly_what_the_project_installs():
    needed = _closure("sanji", {"test"})
    locked = _locked()
    missing = sorted(set(needed) - set(locked))
    unused = sorted(set(locked) - set(needed) - {"pip", "setuptools", "wheel"})
    assert not missing, f"installed but not pinned in constraints.txt (run `make lock`): {missing}"
    assert not unused, f"pinned in constraints.txt but nothing requires them (run `make lock`): {unused}"


def test_the_lock_pins_the_versions_the_tests_run_with():
    needed, locked = _closure("sanji", {"test"}), _locked()
    drift = {name: (locked[name], needed[name]) for name in needed if name in locked and locked[name] != needed[name]}
    assert not drift, f"constraints.txt differs from what is installed, (locked, installed): {drift}"


def test_pins_are_exact():
    assert all(re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", version) for version in _locked().values())
