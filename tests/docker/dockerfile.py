"""Read a Dockerfile and a .dockerignore the way Docker does, for the tests.

Only the parts the rehearsal needs: instructions with their line numbers, stages,
exec and shell forms, ENV with variable expansion, HEALTHCHECK options, and
.dockerignore matching with the same rules as Docker's pattern matcher (last
matching pattern wins, `!` re-includes, a pattern that matches a directory
matches everything below it, `**` spans directories).
"""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

# What `python:3.11-slim` itself sets before our first instruction.
BASE_IMAGE_ENV = {
    "PATH": "/usr/local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
}
BASE_IMAGE_CMD = ["python3"]


@dataclass(frozen=True)
class Instruction:
    """One instruction, its continuation lines joined, comments dropped."""

    keyword: str  # upper case: RUN, COPY, ...
    args: str  # everything after the keyword
    first_line: int  # 1-based, inclusive
    last_line: int

    @property
    def exec_form(self) -> list[str] | None:
        """The JSON array of the exec form, or None for the shell form."""
        return parse_exec_form(self.args)


@dataclass
class Stage:
    """One FROM and the instructions after it."""

    base: str
    name: str | None
    index: int
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None


def parse_exec_form(args: str) -> list[str] | None:
    text = args.strip()
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None  # Docker too falls back to the shell form here.
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def instructions(text: str) -> list[Instruction]:
    """Split a Dockerfile into instructions (default escape character `\\`)."""
    found: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue  # parser directives and comments
        if pending and stripped.startswith("#"):
            continue  # Docker drops comment lines inside a continuation
        if not pending:
            start = number
        if raw.rstrip().endswith("\\"):
            pending.append(raw.rstrip()[:-1])
            continue
        pending.append(raw)
        joined = "\n".join(pending).strip()
        pending = []
        keyword, _, args = joined.partition(" ")
        args = args.replace("\n", "")
        found.append(Instruction(keyword.upper(), args.strip(), start, number))
    if pending:
        raise ValueError(f"the last instruction (line {start}) ends in a line continuation")
    return found


def stages(text: str) -> list[Stage]:
    result: list[Stage] = []
    for instruction in instructions(text):
        if instruction.keyword == "FROM":
            words = instruction.args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            result.append(Stage(base=words[0], name=name, index=len(result)))
        elif not result:
            if instruction.keyword != "ARG":
                raise ValueError(
                    f"line {instruction.first_line}: {instruction.keyword} before FROM"
                )
        else:
            result[-1].instructions.append(instruction)
    return result


_VARIABLE = re.compile(
    r"\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:[-+])(?P<word>[^}]*))?\}"
    r"|\$(?P<plain>[A-Za-z_][A-Za-z0-9_]*)"
)


def expand(text: str, env: dict[str, str]) -> str:
    """Docker's variable substitution: $VAR, ${VAR}, ${VAR:-default}, ${VAR:+alt}."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("plain")
        value = env.get(name, "")
        if match.group("op") == ":-":
            return value or match.group("word")
        if match.group("op") == ":+":
            return match.group("word") if value else ""
        return value

    return _VARIABLE.sub(substitute, text)


def env_pairs(args: str, env: dict[str, str]) -> list[tuple[str, str]]:
    """The key/value pairs of one ENV instruction, expanded against `env`."""
    words = shlex.split(expand(args, env))
    if words and "=" not in words[0]:  # legacy form: ENV KEY the rest is the value
        return [(words[0], " ".join(words[1:]))]
    pairs = [word.partition("=") for word in words]
    return [(key, value) for key, _, value in pairs]


def stage_env(stage: Stage, start: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a stage's final image carries: the base image's plus its ENV."""
    env = dict(BASE_IMAGE_ENV if start is None else start)
    for instruction in stage.all("ENV"):
        env.update(env_pairs(instruction.args, env))
    return env


def container_argv(stage: Stage) -> list[str]:
    """ENTRYPOINT + CMD as Docker combines them (a shell form runs under /bin/sh -c).

    Setting ENTRYPOINT in a stage drops the CMD inherited from the base image.
    """
    entrypoint = stage.last("ENTRYPOINT")
    cmd = stage.last("CMD")
    head = _as_argv(entrypoint) if entrypoint else []
    if cmd is not None:
        tail = _as_argv(cmd)
    else:
        tail = [] if entrypoint else list(BASE_IMAGE_CMD)
    return head + tail


def _as_argv(instruction: Instruction) -> list[str]:
    form = instruction.exec_form
    return form if form is not None else ["/bin/sh", "-c", instruction.args]


@dataclass(frozen=True)
class Healthcheck:
    argv: list[str]
    exec_form: bool
    interval: float
    timeout: float
    start_period: float
    retries: int


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def seconds(duration: str) -> float:
    """A Go duration such as 30s, 1m30s or 500ms, in seconds."""
    parts = _DURATION.findall(duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise ValueError(f"not a duration: {duration!r}")
    return sum(float(n) * _SECONDS[u] for n, u in parts)


def healthcheck(stage: Stage) -> Healthcheck | None:
    instruction = stage.last("HEALTHCHECK")
    if instruction is None or instruction.args.strip().upper() == "NONE":
        return None
    options: dict[str, str] = {}
    rest = instruction.args.strip()
    while rest.startswith("--"):
        option, _, rest = rest.partition(" ")
        key, _, value = option[2:].partition("=")
        options[key] = value
        rest = rest.strip()
    keyword, _, command = rest.partition(" ")
    if keyword.upper() != "CMD":
        raise ValueError(f"line {instruction.first_line}: HEALTHCHECK needs CMD, got {keyword!r}")
    form = parse_exec_form(command)
    return Healthcheck(
        argv=form if form is not None else ["/bin/sh", "-c", command.strip()],
        exec_form=form is not None,
        interval=seconds(options.get("interval", "30s")),
        timeout=seconds(options.get("timeout", "30s")),
        start_period=seconds(options.get("start-period", "0s")),
        retries=int(options.get("retries", "3")),
    )


def exposed_ports(stage: Stage) -> set[int]:
    ports: set[int] = set()
    for instruction in stage.all("EXPOSE"):
        ports.update(int(word.split("/")[0]) for word in instruction.args.split())
    return ports


def volumes(stage: Stage) -> list[str]:
    found: list[str] = []
    for instruction in stage.all("VOLUME"):
        form = parse_exec_form(instruction.args)
        found.extend(form if form is not None else instruction.args.split())
    return found


@dataclass(frozen=True)
class Copy:
    sources: list[str]
    dest: str
    from_stage: str | None


def copy_args(instruction: Instruction) -> Copy:
    words = parse_exec_form(instruction.args) or shlex.split(instruction.args)
    from_stage = None
    while words and words[0].startswith("--"):
        option = words.pop(0)
        if option.startswith("--from="):
            from_stage = option.split("=", 1)[1]
        elif not option.startswith(("--chown=", "--chmod=")):
            raise ValueError(f"line {instruction.first_line}: unsupported COPY option {option}")
    if len(words) < 2:
        raise ValueError(f"line {instruction.first_line}: COPY needs a source and a destination")
    return Copy(sources=words[:-1], dest=words[-1], from_stage=from_stage)


class DockerIgnore:
    """Which paths of a build context a .dockerignore keeps out."""

    def __init__(self, text: str) -> None:
        self.patterns: list[tuple[re.Pattern[str], bool]] = []  # (pattern, re-includes)
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            include = line.startswith("!")
            cleaned = os.path.normpath(line[1:].strip() if include else line).lstrip("/")
            self.patterns.append((re.compile(_pattern_regex(cleaned)), include))

    @classmethod
    def of(cls, context: Path) -> DockerIgnore:
        path = context / ".dockerignore"
        return cls(path.read_text() if path.exists() else "")

    def excludes(self, relative: str) -> bool:
        """True if `relative` (a path inside the context, `/`-separated) is left out.

        Each pattern matches a path when it matches the path itself or any parent
        directory; the last pattern that matches decides.
        """
        parts = PurePosixPath(relative).parts
        matched = [False] * len(self.patterns)
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            for i, (regex, _) in enumerate(self.patterns):
                matched[i] = matched[i] or regex.fullmatch(prefix) is not None
        excluded = False
        for (_, include), hit in zip(self.patterns, matched, strict=True):
            if hit:
                excluded = not include
        return excluded


def _pattern_regex(pattern: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
        elif pattern[i] == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                raise ValueError(f"unclosed character class in .dockerignore pattern {pattern!r}")
            body = pattern[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append(f"[{body}]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)
