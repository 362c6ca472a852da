"""Peergos-style arguments (spec/peergos.md §16 "Config").

`-key value` or `--key value` pairs; a `-flag` followed by another `-x` (or nothing) means "true".
Precedence: command line > `$PEERGOS_PATH/config` > environment variables > defaults. The config file
holds one `key = value` per line (`#` comments allowed); `Args.save_config` writes the effective
non-default values back so a node restarts with the same settings. `PEERGOS_PATH` defaults to
`~/.peergos`; relative file names (databases, blocks) resolve inside it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

CONFIG_FILENAME = "config"
PEERGOS_PATH_KEY = "PEERGOS_PATH"


class ArgsError(ValueError):
    """Malformed command line or config file."""


def parse_command_line(argv: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """Split argv into leading positional commands and `-key value` params."""
    commands: list[str] = []
    params: dict[str, str] = {}
    i = 0
    while i < len(argv) and not argv[i].startswith("-"):
        commands.append(argv[i])
        i += 1
    while i < len(argv):
        tok = argv[i]
        if not tok.startswith("-") or tok in ("-", "--"):
            raise ArgsError(f"expected -key, got {tok!r}")
        key = tok.lstrip("-")
        if "=" in key:
            key, value = key.split("=", 1)
            i += 1
        elif i + 1 < len(argv) and not (
            argv[i + 1].startswith("-") and len(argv[i + 1]) > 1 and not _numeric(argv[i + 1])
        ):
            value = argv[i + 1]
            i += 2
        else:
            value = "true"
            i += 1
        if not key:
            raise ArgsError(f"empty argument name in {tok!r}")
        params[key] = value
    return commands, params


def _numeric(tok: str) -> bool:
    try:
        float(tok)
    except ValueError:
        return False
    return True


def read_config_file(path: Path) -> dict[str, str]:
    """Parse a `key = value` config file (missing file → empty)."""
    if not path.exists():
        return {}
    out: dict[str, str] = {}
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise ArgsError(f"{path}:{n}: expected 'key = value'")
        k, v = line.split("=", 1)
        if not k.strip():
            raise ArgsError(f"{path}:{n}: empty key")
        out[k.strip()] = v.strip()
    return out


@dataclass
class Args:
    """Resolved arguments with typed getters."""

    commands: list[str]
    params: dict[str, str]
    from_command_line: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(
        cls, argv: Sequence[str], env: Mapping[str, str] | None = None, read_config: bool = True
    ) -> Args:
        """Combine command line, `$PEERGOS_PATH/config` and environment."""
        env = dict(os.environ if env is None else env)
        commands, cli = parse_command_line(argv)
        params: dict[str, str] = dict(env)
        peergos_path = Path(
            cli.get(PEERGOS_PATH_KEY) or env.get(PEERGOS_PATH_KEY) or Path.home() / ".peergos"
        )
        if read_config:
            params.update(read_config_file(peergos_path / CONFIG_FILENAME))
        params.update(cli)
        params[PEERGOS_PATH_KEY] = str(peergos_path)
        return cls(commands, params, cli)

    @property
    def peergos_path(self) -> Path:
        """The node's data directory."""
        return Path(self.params[PEERGOS_PATH_KEY]).expanduser()

    def has(self, key: str) -> bool:
        """Whether the argument was given anywhere."""
        return key in self.params

    def get(self, key: str, default: str | None = None) -> str:
        """A string argument (ArgsError if missing and no default)."""
        if key in self.params:
            return self.params[key]
        if default is None:
            raise ArgsError(f"missing required argument -{key}")
        return default

    def get_int(self, key: str, default: int | None = None) -> int:
        """An integer argument (accepts 1g / 10m / 500k size suffixes)."""
        if key not in self.params:
            if default is None:
                raise ArgsError(f"missing required argument -{key}")
            return default
        return parse_size(self.params[key], key)

    def get_bool(self, key: str, default: bool = False) -> bool:
        """A boolean argument (`true`/`false`)."""
        if key not in self.params:
            return default
        v = self.params[key].strip().lower()
        if v in ("true", "yes", "1"):
            return True
        if v in ("false", "no", "0"):
            return False
        raise ArgsError(f"-{key} must be true or false, not {self.params[key]!r}")

    def path(self, key: str, default: str) -> Path:
        """A file argument; relative names resolve inside PEERGOS_PATH."""
        p = Path(self.get(key, default)).expanduser()
        return p if p.is_absolute() else self.peergos_path / p

    def with_params(self, **overrides: str) -> Args:
        """A copy with some parameters replaced."""
        params = dict(self.params)
        params.update(overrides)
        return Args(list(self.commands), params, dict(self.from_command_line))

    def save_config(self, keys: Sequence[str]) -> None:
        """Persist the given keys' effective values to `$PEERGOS_PATH/config` (merged with the file)."""
        path = self.peergos_path / CONFIG_FILENAME
        current = read_config_file(path)
        for k in keys:
            if k in self.params and k != PEERGOS_PATH_KEY:
                current[k] = self.params[k]
        self.peergos_path.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(f"{k} = {v}\n" for k, v in current.items()), encoding="utf-8")
        os.replace(tmp, path)


_SUFFIX = {"k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_size(text: str, key: str = "value") -> int:
    """Parse `123`, `10k`, `5m`, `1g` (binary multiples) into an int."""
    t = text.strip().lower()
    mult = 1
    if t and t[-1] in _SUFFIX:
        mult = _SUFFIX[t[-1]]
        t = t[:-1]
    try:
        return int(t) * mult
    except ValueError:
        raise ArgsError(f"-{key} must be an integer, not {text!r}") from None
