"""Settings: one place that reads the configuration file and the `IVR_*` environment.

Precedence, highest first: explicit overrides (command-line flags) > `IVR_*` environment variables > the TOML
file > defaults. The file is the one named by `--config`, else `IVR_CONFIG`, else `./ivr.toml` when present.
Keys are flat in the file or grouped in tables (`[sip] port = 5060` is the key `sip_port`);
the environment variable for a key is `IVR_` + the key in capitals (`IVR_SIP_PORT`).
The operators' desks and the operators themselves are arrays of tables, set in the file only
(`[[queue.groups]]` is `queue_groups`, `[[queue.agents]]` is `queue_agents`).
"""
from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ivr.errors import IvrError

__all__ = ["Settings", "ConfigError", "AgentConfig", "AgentGroup", "DEFAULT_GROUPS", "load_settings", "default_data_dir"]

ENV_PREFIX = "IVR_"
REPO_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(IvrError, ValueError):
    """A configuration value that cannot be used; the message names the key and where it came from."""


@dataclass(frozen=True)
class AgentGroup:
    """A desk (e.g. general, elderly care) and how long its agents wrap up after a call."""

    name: str
    wrap_up_s: float = 10.0


@dataclass(frozen=True)
class AgentConfig:
    """One operator as configured (`[[queue.agents]]`): reached at a SIP URI, serving one or more groups;
    `user` is the console user name they sign in as ("": none, so they cannot set their own state)."""

    agent_id: str
    name: str
    uri: str
    groups: tuple[str, ...]
    user: str = ""


DEFAULT_GROUPS = (AgentGroup("general", 10.0), AgentGroup("elderly", 15.0))
TRANSCRIBE_ENGINES = ("vosk", "whisper")
_ID = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_SIP_URI = re.compile(r"sips?:(?:[^@\s:;]+@)?[A-Za-z0-9.\-]+(?::\d{1,5})?(?:;\S*)?")
_HOST_PORT = re.compile(r"[A-Za-z0-9.\-]+:(\d{1,5})")
_HOURS = re.compile(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})")


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "ivr"


@dataclass(frozen=True)
class Settings:
    """Every setting of the product, with defaults that work on one machine."""

    data_dir: Path = field(default_factory=default_data_dir)
    database_url: str = ""  # default: sqlite file under data_dir
    recordings_dir: Path | None = None  # default: data_dir/recordings
    recordings_shared_dir: Path | None = None  # a folder every node mounts: finished recordings are copied there
    models_dir: Path | None = None  # default: data_dir/models
    vosk_model: str | None = None  # a model directory or a catalogue name
    flow: Path = REPO_ROOT / "flows" / "hotline.yaml"
    flows_dir: Path = REPO_ROOT / "flows"
    kb_dir: Path = REPO_ROOT / "kb"  # the knowledge base's files (kb/*.yaml), reloaded when they change
    prompts_catalogue: Path = REPO_ROOT / "prompts" / "catalogue.yaml"
    prompts_recorded_dir: Path = REPO_ROOT / "prompts" / "recorded"
    prompts_cache: Path | None = None  # default: data_dir/prompts
    prompts_voice: str = "auto"  # the voice of `ivr prompts build` and of an edited knowledge-base answer rendered again
    elderly_numbers: tuple[str, ...] = ()
    sip_host: str = "0.0.0.0"
    sip_port: int = 5060
    sip_allow: tuple[str, ...] = ()  # addresses or CIDRs allowed to send SIP at all; none = everyone
    sip_trusted: tuple[str, ...] = ()  # the trunk/proxy (SBC, Kamailio): allowed, no per-source INVITE limits
    sip_invite_rate: float = 20.0  # new calls a second from one untrusted address (token bucket) ...
    sip_invite_burst: int = 40  # ... and how many at once
    sip_trusted_invite_rate: float = 0.0  # the same for one trusted address; 0 = no per-source limit
    sip_trusted_invite_burst: int = 200
    sip_global_invite_rate: float = 100.0  # new calls a second from all addresses together; 0 = no limit
    sip_global_invite_burst: int = 200
    sip_max_calls_per_source: int = 0  # calls at once from one untrusted address; 0 = only max_calls
    rtp_port_min: int = 20000
    rtp_port_max: int = 30000
    rtp_timeout_s: float = 60.0  # a call (inbound or outbound) with no RTP from the far end this long is hung up
    max_calls: int = 400
    asr_warm: int = 8  # recognisers warmed on the prompts' audio at start-up (a cold one decodes 2.5x slower for 30 s)
    asr_recycle_after_s: float = 3600.0  # a recogniser that decoded this much audio is dropped (its cache only grows)
    asr_workers: int = 0  # decoding threads; 0 = one per core
    asr_live_limit: int = 0  # listening steps live recognition takes at once; 0 = adapt to the decoders' lag
    asr_live_reserve: int = 2  # how far elderly callers and recorded complaints may go past that limit
    asr_soft_lag_ms: int = 300  # decoder lag (p95) above which fewer steps are admitted
    transcribe_engine: str = "vosk"  # the post-call (second-pass) engine: "vosk" or "whisper"
    transcribe_model: str = ""  # its model: a folder or a name under models_dir ("": vosk's live model, whisper-base)
    transcribe_lease_s: float = 900.0  # a job whose worker is silent this long is taken up again by another
    drain_s: float = 30.0  # on Ctrl-C/SIGTERM calls may go on this long, then the rest are hung up and it exits
    console_host: str = "127.0.0.1"
    console_port: int = 8080
    console_secure_cookies: bool = False  # mark the console's cookies Secure (it is reached over HTTPS)
    log_level: str = "WARNING"
    timezone: str = "Asia/Shanghai"  # the hotline's clock, not the machine's: business hours, callbacks, ticket days
    node_id: str = ""  # this server among those sharing a ticket store; default: the host name
    queue_trunk: str = ""  # host:port of the outbound proxy for callbacks; "" = none, calls go to each URI's host
    queue_callback_threshold_s: float = 180.0  # offer a callback when the expected wait is longer
    queue_callback_hours: str = "08:00-20:00"  # when callbacks are dialled (in `timezone`)
    queue_quiet_hours: str = ""  # e.g. "12:00-13:30": no callbacks then; may wrap midnight
    queue_transfer: str = "bridge"  # "bridge" (relay media, record, see the end) or "refer" (blind transfer)
    queue_refer_busy_s: float = 300.0  # a referred operator counts as on a call until they set their state, or this
    queue_groups: tuple[AgentGroup, ...] = DEFAULT_GROUPS
    queue_agents: tuple[AgentConfig, ...] = ()  # none: callers hear no operator is free and leave a message
    queue_database_url: str = ""  # PostgreSQL holding the centre's queue shared by several nodes; "": this node's own
    queue_node_timeout_s: float = 5.0  # a node sharing the queue that has not beaten this long is given up
    queue_callback_lease_s: float = 120.0  # a callback whose dialler died (any node) is dialled again after this

    def __post_init__(self) -> None:
        d = Path(self.data_dir)
        object.__setattr__(self, "data_dir", d)
        if self.recordings_dir is None:
            object.__setattr__(self, "recordings_dir", d / "recordings")
        if self.models_dir is None:
            object.__setattr__(self, "models_dir", d / "models")
        if self.prompts_cache is None:
            object.__setattr__(self, "prompts_cache", d / "prompts")
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{d / 'ivr.db'}")
        for key in ("sip_port", "console_port", "rtp_port_min", "rtp_port_max"):
            port = getattr(self, key)
            if not 0 <= port <= 65535:
                raise ConfigError(f"{key}: {port} is not a port number (0-65535)")
        object.__setattr__(self, "database_url", database_url(self.database_url))
        if self.queue_database_url:
            object.__setattr__(self, "queue_database_url",
                               database_url(self.queue_database_url, "queue_database_url", sqlite=False))
        if self.rtp_port_min > self.rtp_port_max:
            raise ConfigError(
                f"rtp_port_min ({self.rtp_port_min}) is above rtp_port_max ({self.rtp_port_max})"
            )
        if not self.node_id:
            object.__setattr__(self, "node_id", socket.gethostname())
        if not _ID.fullmatch(self.node_id):
            raise ConfigError(f"node_id: {self.node_id!r} is not 1-64 letters, digits, '.', '_' or '-'")
        self._check_sip()
        zone(self.timezone)
        for key in ("asr_warm", "asr_workers", "asr_live_limit", "asr_live_reserve"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key}: {getattr(self, key)} is below 0")
        if self.asr_recycle_after_s <= 0 or self.asr_soft_lag_ms <= 0:
            raise ConfigError("asr_recycle_after_s and asr_soft_lag_ms must be above 0")
        if self.transcribe_engine not in TRANSCRIBE_ENGINES:
            raise ConfigError(f"transcribe_engine: {self.transcribe_engine!r} is not one of "
                              f"{', '.join(TRANSCRIBE_ENGINES)}")
        if self.transcribe_lease_s <= 0:
            raise ConfigError(f"transcribe_lease_s: {self.transcribe_lease_s} is not above 0")
        if self.log_level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ConfigError(f"log_level: {self.log_level!r} is not one of DEBUG, INFO, WARNING, ERROR")
        self._check_queue()

    def _check_sip(self) -> None:
        for key in ("sip_allow", "sip_trusted"):
            for entry in getattr(self, key):
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ConfigError(f"{key}: {entry!r} is not an IP address or network (CIDR)") from None
        for key in ("sip_invite_rate", "sip_trusted_invite_rate", "sip_global_invite_rate", "rtp_timeout_s", "drain_s",
                    "sip_max_calls_per_source"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key}: {getattr(self, key)} is below 0")
        for key in ("sip_invite_burst", "sip_trusted_invite_burst", "sip_global_invite_burst"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}: {getattr(self, key)} is below 1")

    def _check_queue(self) -> None:
        trunk = _HOST_PORT.fullmatch(self.queue_trunk)
        if self.queue_trunk and (trunk is None or not 0 < int(trunk.group(1)) < 65536):
            raise ConfigError(f"queue_trunk: {self.queue_trunk!r} is not host:port")
        if self.queue_callback_threshold_s < 0:
            raise ConfigError(f"queue_callback_threshold_s: {self.queue_callback_threshold_s} is below 0")
        if self.queue_transfer not in ("bridge", "refer"):
            raise ConfigError(f"queue_transfer: {self.queue_transfer!r} is not bridge or refer")
        if self.queue_refer_busy_s <= 0:
            raise ConfigError(f"queue_refer_busy_s: {self.queue_refer_busy_s} is not above 0")
        for key in ("queue_node_timeout_s", "queue_callback_lease_s"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"{key}: {getattr(self, key)} is not above 0")
        hours_span("queue_callback_hours", self.queue_callback_hours)
        if self.queue_quiet_hours:
            hours_span("queue_quiet_hours", self.queue_quiet_hours)
        names = [g.name for g in self.queue_groups]
        if not names:
            raise ConfigError("queue_groups: at least one group is needed")
        for name in names:
            if names.count(name) > 1:
                raise ConfigError(f"queue_groups: group {name!r} is listed twice")
        ids = [a.agent_id for a in self.queue_agents]
        for a in self.queue_agents:
            if ids.count(a.agent_id) > 1:
                raise ConfigError(f"queue_agents: agent {a.agent_id!r} is listed twice")
            same_user = [b.agent_id for b in self.queue_agents if a.user and b.user == a.user]
            if len(same_user) > 1:
                raise ConfigError(f"queue_agents: agents {' and '.join(map(repr, same_user))} have the same "
                                  f"user {a.user!r}")
            for group in a.groups:
                if group not in names:
                    raise ConfigError(f"queue_agents: agent {a.agent_id!r}: unknown group {group!r} "
                                      f"(groups: {', '.join(names)})")

    @property
    def tz(self) -> ZoneInfo:
        """The hotline's local time zone (`timezone`)."""
        return zone(self.timezone)

    def make_dirs(self) -> None:
        """Create the data folder, the recordings folder and the SQLite database's folder, or raise ConfigError
        naming the setting whose folder cannot be created."""
        folders = [("data_dir", self.data_dir), ("recordings_dir", self.recordings_dir)]
        if self.database_url.startswith("sqlite:///"):
            folders.append(("database_url", Path(self.database_url[len("sqlite:///"):]).parent))
        for key, folder in folders:
            try:
                Path(folder).mkdir(parents=True, exist_ok=True)  # type: ignore[arg-type]
            except OSError as exc:
                raise ConfigError(f"{key}: cannot create the folder {folder} ({exc.strerror})") from None


_DB_SCHEMES = {"sqlite": "sqlite", "postgresql+psycopg": "postgresql+psycopg",
               "postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg"}


def database_url(url: str, key: str = "database_url", sqlite: bool = True) -> str:
    """The URL the store is opened with: SQLite (if `sqlite`), or PostgreSQL through psycopg 3 (the driver shipped;
    a plain postgresql:// URL means it). Anything else is a ConfigError naming `key` (password hidden)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in _DB_SCHEMES or (not sqlite and scheme.lower() == "sqlite"):
        shown = re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)
        if not sqlite:
            raise ConfigError(f"{key}: {shown!r} is not a PostgreSQL URL (postgresql://USER@HOST/DB)")
        raise ConfigError(f"{key}: {shown!r} is not an SQLite or PostgreSQL URL "
                          "(sqlite:///FILE or postgresql://USER@HOST/DB)")
    return f"{_DB_SCHEMES[scheme.lower()]}://{rest}"


def zone(name: str) -> ZoneInfo:
    """The time zone `name` (IANA, e.g. Asia/Shanghai); an unknown one is a ConfigError."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"timezone: {name!r} is not a time zone name like Asia/Shanghai (the names are in "
                          "/usr/share/zoneinfo, from the tzdata package)") from None


def hours_span(key: str, text: str) -> tuple[float, float]:
    """'HH:MM-HH:MM' as hours (8.0, 20.5); a bad span is a ConfigError naming `key`."""
    m = _HOURS.fullmatch(text.strip())
    if m is None:
        raise ConfigError(f"{key}: {text!r} is not a span of hours like 08:00-20:00")
    h0, m0, h1, m1 = (int(g) for g in m.groups())
    if h0 > 24 or h1 > 24 or m0 > 59 or m1 > 59:
        raise ConfigError(f"{key}: {text!r} is not a span of hours like 08:00-20:00")
    return h0 + m0 / 60, h1 + m1 / 60


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}_"))
        else:
            flat[name] = value
    return flat


def _coerce(key: str, value: Any, source: str) -> Any:
    """Turn a file or environment value into the field's type, or raise ConfigError naming the key."""
    ftype = str(_FIELDS[key].type)
    try:
        if ftype == "int":
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        if ftype == "bool":
            return _bool(value)
        if ftype == "float":
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise ValueError
            return float(value)
        if ftype == "tuple[AgentGroup, ...]":
            return tuple(_group(item, i, f"{key} (from {source})") for i, item in enumerate(_tables(value), 1))
        if ftype == "tuple[AgentConfig, ...]":
            return tuple(_agent(item, i, f"{key} (from {source})") for i, item in enumerate(_tables(value), 1))
        if ftype in ("Path", "Path | None"):
            if not isinstance(value, (str, Path)) or str(value) == "":
                raise ValueError
            return Path(os.path.expanduser(str(value)))
        if ftype == "tuple[str, ...]":
            if isinstance(value, str):
                return tuple(v.strip() for v in value.split(",") if v.strip())
            if isinstance(value, (list, tuple)) and all(isinstance(v, (str, int)) for v in value):
                return tuple(str(v) for v in value)
            raise ValueError
        if ftype in ("str", "str | None"):
            if not isinstance(value, str):
                raise ValueError
            return value
    except ConfigError:
        raise
    except ValueError:
        expected = {"int": "an integer", "float": "a number", "bool": "true or false", "tuple[str, ...]": "a list of strings",
                    "tuple[AgentGroup, ...]": "a list of tables", "tuple[AgentConfig, ...]": "a list of tables",
                    }.get(ftype, "a string")
        raise ConfigError(f"{key} (from {source}): {value!r} is not {expected}") from None
    raise AssertionError(f"unhandled settings type {ftype}")


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


def _bool(value: Any) -> bool:
    """A TOML boolean, or true/false, yes/no, on/off, 1/0 from the environment."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError


def _tables(value: Any) -> list[Any]:
    if not isinstance(value, (list, tuple)):
        raise ValueError
    return list(value)


def _fields(item: Any, index: int, where: str, what: str, allowed: set[str]) -> tuple[str, dict[str, Any]]:
    """A table's fields after checking its `name`/`id` and that it has no unknown field; returns (label, fields)."""
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: {what} {index} is not a table")
    key = "name" if what == "group" else "id"
    ident = item.get(key)
    if ident is None:
        raise ConfigError(f"{where}: {what} {index}: missing {key!r}")
    if not isinstance(ident, str) or not _ID.fullmatch(ident):
        raise ConfigError(f"{where}: {what} {index}: {key} {ident!r} is not 1-64 letters, digits, '.', '_' or '-'")
    label = f"{what} {ident!r}"
    for name in item:
        if name not in allowed:
            raise ConfigError(f"{where}: {label}: unknown field {name!r}")
    return label, item


def _group(item: Any, index: int, where: str) -> AgentGroup:
    if isinstance(item, AgentGroup):
        return item
    label, f = _fields(item, index, where, "group", {"name", "wrap_up_s"})
    wrap = f.get("wrap_up_s", 10.0)
    if isinstance(wrap, bool) or not isinstance(wrap, (int, float)) or wrap < 0:
        raise ConfigError(f"{where}: {label}: wrap_up_s {wrap!r} is not a number of seconds")
    return AgentGroup(f["name"], float(wrap))


def _agent(item: Any, index: int, where: str) -> AgentConfig:
    if isinstance(item, AgentConfig):
        return item
    label, f = _fields(item, index, where, "agent", {"id", "name", "uri", "groups", "user"})
    name, uri, groups, user = f.get("name", f["id"]), f.get("uri"), f.get("groups"), f.get("user", "")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}: {label}: name {name!r} is not a non-empty string")
    if "user" in f and (not isinstance(user, str) or not user.strip()):
        raise ConfigError(f"{where}: {label}: user {user!r} is not a non-empty string")
    if uri is None:
        raise ConfigError(f"{where}: {label}: missing 'uri'")
    if not isinstance(uri, str) or not _SIP_URI.fullmatch(uri):
        raise ConfigError(f"{where}: {label}: uri {uri!r} is not a SIP URI like sip:op1@10.0.0.5:5060")
    if not isinstance(groups, (list, tuple)) or not groups or not all(isinstance(g, str) for g in groups):
        raise ConfigError(f"{where}: {label}: groups {groups!r} is not a non-empty list of group names")
    return AgentConfig(f["id"], name.strip(), uri, tuple(groups), user.strip())


def _read_file(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration file ({exc.strerror})") from None
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); "
                          "save it as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    values = _flatten(raw)
    for key in values:
        if key not in _FIELDS:
            raise ConfigError(f"{path}: unknown setting {key!r}")
    return {k: _coerce(k, v, str(path)) for k, v in values.items()}


def load_settings(
    config_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build the Settings from defaults, file, environment and overrides (in rising precedence)."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    path = config_file or env.get(f"{ENV_PREFIX}CONFIG")
    if path:
        values.update(_read_file(Path(path)))
    elif Path("ivr.toml").is_file():
        values.update(_read_file(Path("ivr.toml")))
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or name == f"{ENV_PREFIX}CONFIG":
            continue
        key = name[len(ENV_PREFIX):].lower()
        if key not in _FIELDS:
            raise ConfigError(f"{name}: unknown setting {key!r} in the environment")
        values[key] = _coerce(key, raw, f"environment variable {name}")
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key not in _FIELDS:
            raise ConfigError(f"unknown setting {key!r}")
        values[key] = _coerce(key, value, "the command line")
    return Settings(**values)
