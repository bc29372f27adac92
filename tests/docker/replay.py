"""Replay a Dockerfile's stages on this machine, which has no Docker engine.

Each stage gets a fresh directory `rootfs` standing in for the image's root file
system, always at the same path, so that a virtual environment made in the build
stage and copied by `COPY --from` still finds itself (as it does in Docker, where
both stages put it at /opt/venv). A finished stage is moved aside to
`stage-<index>` for later `COPY --from`.

Substitutions, all forced by the missing engine:
- Absolute paths that belong to the image (WORKDIR, VOLUME, COPY targets and
  sources, absolute paths in ENV) are moved under `rootfs`; /usr/local/bin, where
  the base image keeps Python, is a virtual environment of this machine's Python
  of the same minor version (`usr-local`); everything else is this machine's.
- RUN: commands of python/pip and mkdir/chown/chmod (on paths inside `rootfs`
  only) are executed, joined with `&&` as written; useradd/groupadd only record
  the user they would make (this machine's /etc/passwd is left alone, and the
  server later runs with the numeric uid:gid). Anything else is refused, since it
  would run as root on this machine rather than in an image.
- Build stages run as root with HOME=/root, as `docker build` does, so pip may
  reuse this machine's download cache; pip's index settings are passed through.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .dockerfile import (
    BASE_IMAGE_ENV,
    DockerIgnore,
    Instruction,
    Stage,
    copy_args,
    env_pairs,
    expand,
    stages,
    volumes,
)

# Host settings a build or a server needs to behave as on this machine: pip's
# index and proxy, and the OpenBLAS core type some processors need.
PASSTHROUGH = re.compile(
    r"^(PIP_.*|OPENBLAS_.*|(?:HTTPS?|NO|ALL)_PROXY|(?:https?|no|all)_proxy|SSL_CERT_.*)$"
)
_PATH_TOKEN = re.compile(r"(?<![\w./$}\-])/[\w.+@\-]+(?:/[\w.+@\-*]*)*")
_REPLAYED = re.compile(r"^(python(3(\.\d+)?)?|pip3?|mkdir|chown|chmod)$")
_ACCOUNTS = {"useradd", "groupadd", "adduser", "addgroup"}


class ReplayError(Exception):
    """The Dockerfile asks for something the replay cannot do faithfully or safely."""


@dataclass
class Account:
    """A user or group that a RUN useradd/groupadd would have made."""

    name: str
    uid: int | None = None
    gid: int | None = None
    home: str | None = None


@dataclass
class StageResult:
    """What a replayed stage leaves behind, in the image's own terms."""

    env: dict[str, str]
    workdir: str
    user: str
    users: dict[str, Account] = field(default_factory=dict)
    groups: dict[str, Account] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class PathMap:
    """Moves the image's own absolute paths under the fake root."""

    def __init__(self, root: Path, owned: set[str], extra: dict[str, Path]) -> None:
        self.root = root
        self.owned = sorted(owned, key=len, reverse=True)
        self.extra = extra

    def path(self, image_path: str) -> Path:
        """Where an absolute image path lies on this machine."""
        return self.root / PurePosixPath(image_path).relative_to("/")

    def text(self, text: str) -> str:
        """`text` with every path under the image's own folders moved."""

        def move(match: re.Match[str]) -> str:
            found = match.group()
            for image, host in self.extra.items():
                if found == image or found.startswith(image + "/"):
                    return str(host) + found[len(image) :]
            for image in self.owned:
                if found == image or found.startswith(image + "/"):
                    return str(self.root) + found
            return found

        return _PATH_TOKEN.sub(move, text)


def owned_paths(all_stages: list[Stage]) -> set[str]:
    """The absolute paths a Dockerfile makes its own."""
    owned: set[str] = set()
    for stage in all_stages:
        owned.update(volumes(stage))
        for instruction in stage.instructions:
            if instruction.keyword == "WORKDIR" and instruction.args.startswith("/"):
                owned.add(instruction.args.strip())
            elif instruction.keyword == "COPY":
                copy = copy_args(instruction)
                owned.update(p for p in [copy.dest] if p.startswith("/"))
                if copy.from_stage is not None:
                    owned.update(s for s in copy.sources if s.startswith("/"))
            elif instruction.keyword == "ENV":
                owned.update(_PATH_TOKEN.findall(instruction.args))
    return {str(PurePosixPath(p)) for p in owned if p != "/"}


def python_minor(base: str) -> str:
    match = re.match(r"^(?:docker\.io/)?(?:library/)?python:(\d+\.\d+)", base)
    if match is None:
        raise ReplayError(f"the replay knows python:X.Y base images only, not {base}")
    return match.group(1)


def world_executable(path: Path) -> bool:
    """Whether any user may run `path` (every folder on the way searchable)."""
    real = path.resolve()
    folders_ok = all(p.stat().st_mode & 0o001 for p in real.parents)
    return folders_ok and bool(real.stat().st_mode & 0o001)


def base_interpreter(minor: str) -> tuple[Path, bool]:
    """A Python `minor` with venv and ensurepip, preferably one any user may run.

    Answers the interpreter and whether a non-root user can run it.
    """
    candidates = [Path(f"/usr/bin/python{minor}"), Path(f"/usr/local/bin/python{minor}")]
    if f"{sys.version_info.major}.{sys.version_info.minor}" == minor:
        candidates.append(Path(getattr(sys, "_base_executable", sys.executable)))
    usable = [c for c in candidates if c.exists() and _has_venv(c)]
    if not usable:
        raise ReplayError(f"no Python {minor} with venv and ensurepip on this machine")
    shared = [c for c in usable if world_executable(c)]
    return (shared[0], True) if shared else (usable[0], False)


def _has_venv(python: Path) -> bool:
    probe = [str(python), "-c", "import ensurepip, venv"]
    return subprocess.run(probe, capture_output=True).returncode == 0


def host_env(image_env: dict[str, str], paths: PathMap) -> dict[str, str]:
    env = {k: paths.text(v) for k, v in image_env.items()}
    env.update({k: v for k, v in os.environ.items() if PASSTHROUGH.match(k)})
    return env


class StageReplayer:
    """Replays one stage into `paths.root` (which must not exist yet)."""

    def __init__(
        self,
        paths: PathMap,
        context: Path,
        stage_roots: dict[str, Path],
        log: list[str],
    ) -> None:
        self.paths = paths
        self.context = context
        self.ignore = DockerIgnore.of(context)
        self.stage_roots = stage_roots
        self.log = log

    def replay(self, stage: Stage) -> StageResult:
        self.paths.root.mkdir(mode=0o755)
        os.chmod(self.paths.root, 0o755)
        state = StageResult(env=dict(BASE_IMAGE_ENV), workdir="/", user="0")
        args: dict[str, str] = {}
        for instruction in stage.instructions:
            self._one(instruction, state, args)
        return state

    def _one(self, instruction: Instruction, state: StageResult, args: dict[str, str]) -> None:
        keyword = instruction.keyword
        where = f"line {instruction.first_line}"
        if keyword == "ENV":
            state.env.update(env_pairs(instruction.args, state.env))
        elif keyword == "ARG":
            name, _, default = instruction.args.partition("=")
            args[name.strip()] = default
        elif keyword == "WORKDIR":
            raw = expand(instruction.args.strip(), {**args, **state.env})
            state.workdir = str(PurePosixPath(state.workdir, raw))
            self.paths.path(state.workdir).mkdir(parents=True, exist_ok=True)
        elif keyword == "USER":
            state.user = expand(instruction.args.strip(), {**args, **state.env})
        elif keyword == "VOLUME":
            for volume in volumes(Stage("", None, 0, [instruction])):
                self.paths.path(volume).mkdir(parents=True, exist_ok=True)
        elif keyword == "COPY":
            self._copy(instruction, state)
        elif keyword == "RUN":
            self._run(instruction, state, args)
        elif keyword in {"EXPOSE", "HEALTHCHECK", "ENTRYPOINT", "CMD", "LABEL", "STOPSIGNAL"}:
            return  # metadata: read by the rehearsal from the Dockerfile itself
        else:
            raise ReplayError(f"{where}: the replay does not know {keyword}; extend tests/docker")

    def _copy(self, instruction: Instruction, state: StageResult) -> None:
        copy = copy_args(instruction)
        dest_image = str(PurePosixPath(state.workdir, copy.dest))
        dest = self.paths.path(dest_image)
        into_folder = copy.dest.endswith("/") or len(copy.sources) > 1
        for source in copy.sources:
            if copy.from_stage is not None:
                if copy.from_stage not in self.stage_roots:
                    raise ReplayError(f"line {instruction.first_line}: no stage {copy.from_stage}")
                origin = self.stage_roots[copy.from_stage] / source.lstrip("/")
                # Hard links: as fast as the copy must be for every rehearsal, and as
                # good as one, since the image's user cannot write these root-owned files.
                _copy_tree_or_file(origin, dest, into_folder, lambda _relative: True, link=True)
                continue
            relative = os.path.normpath(source).lstrip("/")
            origin = self.context / relative
            if relative != "." and (not origin.exists() or self.ignore.excludes(relative)):
                raise ReplayError(
                    f"line {instruction.first_line}: COPY {source}: not in the build context "
                    "or left out by .dockerignore"
                )

            def keep(inner: str, prefix: str = relative) -> bool:
                return not self.ignore.excludes(os.path.normpath(os.path.join(prefix, inner)))

            _copy_tree_or_file(origin, dest, into_folder, keep)

    def _run(self, instruction: Instruction, state: StageResult, args: dict[str, str]) -> None:
        where = f"line {instruction.first_line}"
        if instruction.exec_form is not None:
            raise ReplayError(f"{where}: the replay runs shell-form RUN only")
        if state.user not in {"0", "root"}:
            raise ReplayError(f"{where}: the replay runs RUN as root only (USER {state.user})")
        env = host_env({**args, **state.env}, self.paths)
        env["HOME"] = "/root"
        cwd = self.paths.path(state.workdir)
        parts: list[str] = []
        for segment in and_chain(instruction.args, where):
            words = shlex.split(expand(segment, env))
            command = os.path.basename(words[0])
            if command in _ACCOUNTS:
                record_account(words, state)
                command_line = " ".join(segment.split())
                state.notes.append(f"{where}: not run here ({command_line}); USER's ids are used")
                parts.append("true")
            elif _REPLAYED.match(command):
                mapped = self.paths.text(_numeric_owner(segment, state))
                if command in {"mkdir", "chown", "chmod"}:
                    self._inside_root(shlex.split(expand(mapped, env)), cwd, where)
                parts.append(mapped)
            else:
                raise ReplayError(
                    f"{where}: the replay runs python, pip, mkdir, chown and chmod only, not "
                    f"{command!r}: anything else would change this machine instead of an image"
                )
        script = " && ".join(parts)
        self.log.append(f"$ {script}")
        done = subprocess.run(
            ["/bin/sh", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
        )
        self.log.append(done.stdout + done.stderr)
        if done.returncode != 0:
            tail = (done.stdout + done.stderr)[-3000:]
            raise ReplayError(f"{where}: RUN failed with status {done.returncode}:\n{tail}")

    def _inside_root(self, words: list[str], cwd: Path, where: str) -> None:
        operands = [w for w in words[1:] if not w.startswith("-")]
        if words[0].endswith(("chown", "chmod")):
            operands = operands[1:]
        for operand in operands:
            target = os.path.normpath(cwd / operand)
            if os.path.commonpath([target, self.paths.root]) != str(self.paths.root):
                raise ReplayError(f"{where}: {words[0]} would touch {operand} on this machine")


def and_chain(script: str, where: str) -> list[str]:
    """The commands of a `cmd && cmd && ...` script; other shell operators are refused."""
    segments: list[str] = []
    current: list[str] = []
    quote = ""
    i = 0
    while i < len(script):
        char = script[i]
        if char == "\\" and quote != "'":
            current.append(script[i : i + 2])
            i += 2
            continue
        if quote:
            if char == quote:
                quote = ""
            elif char == "`" or (quote == '"' and script.startswith("$(", i)):
                raise ReplayError(f"{where}: command substitution is not replayed")
        elif char in "'\"":
            quote = char
        elif script.startswith("&&", i):
            segments.append("".join(current))
            current = []
            i += 2
            continue
        elif char in ";|&`" or script.startswith("$(", i):
            raise ReplayError(f"{where}: the replay joins commands with && only, found {char!r}")
        current.append(char)
        i += 1
    segments.append("".join(current))
    if any(not s.strip() for s in segments):
        raise ReplayError(f"{where}: empty command in RUN")
    return segments


def record_account(words: list[str], state: StageResult) -> None:
    """Remember the ids a useradd/groupadd gives, for USER and chown."""
    names = {"-u": "uid", "--uid": "uid", "-g": "gid", "--gid": "gid"}
    names |= {"-d": "home", "--home-dir": "home", "--home": "home"}
    given: dict[str, str] = {}
    rest = words[1:-1]
    for i, word in enumerate(rest):
        key, equals, inline = word.partition("=")
        if key in names:
            given[names[key]] = inline if equals else (rest[i + 1] if i + 1 < len(rest) else "")
    gid = given.get("gid")
    if gid is not None and not gid.isdigit():
        known = state.groups.get(gid)
        gid = str(known.gid) if known is not None else None
    account = Account(
        name=words[-1],
        uid=int(given["uid"]) if given.get("uid", "").isdigit() else None,
        gid=int(gid) if gid is not None else None,
        home=given.get("home"),
    )
    if os.path.basename(words[0]) in {"groupadd", "addgroup"}:
        state.groups[account.name] = account
    else:
        state.users[account.name] = account


def _numeric_owner(segment: str, state: StageResult) -> str:
    """A chown by name names a user this machine lacks: use the recorded ids instead."""
    words = segment.split()
    if not words or os.path.basename(words[0]) != "chown":
        return segment
    spec = next(w for w in words[1:] if not w.startswith("-"))
    user, colon, group = spec.partition(":")
    if user in state.users and state.users[user].uid is not None:
        user = str(state.users[user].uid)
    if group in state.groups and state.groups[group].gid is not None:
        group = str(state.groups[group].gid)
    return segment.replace(spec, user + colon + group, 1)


def _copy_tree_or_file(
    origin: Path, dest: Path, into_folder: bool, keep: Callable[[str], bool], link: bool = False
) -> None:
    if origin.is_dir() and not origin.is_symlink():
        dest.mkdir(parents=True, exist_ok=True)
        for folder, dirs, files in os.walk(origin):
            inner = os.path.relpath(folder, origin)
            dirs[:] = [d for d in dirs if keep(os.path.normpath(os.path.join(inner, d)))]
            target = dest / inner
            target.mkdir(parents=True, exist_ok=True)
            for name in files:
                if keep(os.path.normpath(os.path.join(inner, name))):
                    _copy_entry(Path(folder) / name, target / name, link)
            for name in dirs:
                if (Path(folder) / name).is_symlink():
                    _copy_entry(Path(folder) / name, target / name, link)
        return
    if not origin.exists() and not origin.is_symlink():
        raise ReplayError(f"COPY: {origin} does not exist")
    target = dest / origin.name if into_folder else dest
    target.parent.mkdir(parents=True, exist_ok=True)
    _copy_entry(origin, target, link)


def _copy_entry(origin: Path, target: Path, link: bool) -> None:
    if target.is_symlink() or target.exists():
        target.unlink()
    if origin.is_symlink():
        target.symlink_to(os.readlink(origin))
    elif link:
        os.link(origin, target)
    else:
        shutil.copy2(origin, target)


@dataclass
class Build:
    """The replayed build stages, shared by every rehearsal of the runtime stage."""

    workdir: Path
    paths: PathMap
    stage_roots: dict[str, Path]
    build_stages: list[list[Instruction]]
    shared_python: bool
    log: list[str]


def replay_build(dockerfile: Path, context: Path, workdir: Path) -> Build:
    """Replay every stage but the last; `workdir` must be searchable by any user."""
    all_stages = stages(dockerfile.read_text())
    if len(all_stages) < 2:
        raise ReplayError("the Dockerfile has a single stage; expected a build and a runtime stage")
    python, shared = base_interpreter(python_minor(all_stages[-1].base))
    usr_local = workdir / "usr-local"
    subprocess.run([str(python), "-m", "venv", str(usr_local)], check=True, capture_output=True)
    paths = PathMap(
        workdir / "rootfs", owned_paths(all_stages), {"/usr/local/bin": usr_local / "bin"}
    )
    log: list[str] = []
    stage_roots: dict[str, Path] = {}
    for stage in all_stages[:-1]:
        if python_minor(stage.base) != python_minor(all_stages[-1].base):
            raise ReplayError(
                f"stage {stage.index} uses {stage.base}, the last stage another Python"
            )
        StageReplayer(paths, context, stage_roots, log).replay(stage)
        saved = workdir / f"stage-{stage.index}"
        os.rename(paths.root, saved)
        stage_roots[str(stage.index)] = saved
        if stage.name:
            stage_roots[stage.name] = saved
    return Build(
        workdir=workdir,
        paths=paths,
        stage_roots=stage_roots,
        build_stages=[s.instructions for s in all_stages[:-1]],
        shared_python=shared,
        log=log,
    )
