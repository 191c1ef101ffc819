"""Settings precedence (overrides > environment > file > defaults) and clear errors naming the key."""
from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ivr.config import ConfigError, Settings, load_settings


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "ivr.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_defaults_work_on_one_machine(tmp_path: Path) -> None:
    s = load_settings(overrides={"data_dir": tmp_path}, environ={})
    assert s.database_url == f"sqlite:///{tmp_path / 'ivr.db'}"
    assert s.recordings_dir == tmp_path / "recordings"
    assert s.models_dir == tmp_path / "models"
    assert s.flow.name == "hotline.yaml" and s.flow.is_file()


def test_precedence_file_then_env_then_override(tmp_path: Path) -> None:
    cfg = write(tmp_path, "max_calls = 10\n[sip]\nport = 5070\nhost = '127.0.0.1'\n")
    s = load_settings(cfg, environ={})
    assert (s.sip_port, s.sip_host, s.max_calls) == (5070, "127.0.0.1", 10)
    s = load_settings(cfg, environ={"IVR_SIP_PORT": "5080"})
    assert (s.sip_port, s.sip_host) == (5080, "127.0.0.1")
    s = load_settings(cfg, overrides={"sip_port": 5090}, environ={"IVR_SIP_PORT": "5080"})
    assert s.sip_port == 5090


def test_config_file_named_by_environment(tmp_path: Path) -> None:
    cfg = write(tmp_path, "console_port = 9000\n")
    assert load_settings(environ={"IVR_CONFIG": str(cfg)}).console_port == 9000


def test_list_settings_from_file_and_env(tmp_path: Path) -> None:
    cfg = write(tmp_path, "elderly_numbers = ['13900000001', 13900000002]\n")
    assert load_settings(cfg, environ={}).elderly_numbers == ("13900000001", "13900000002")
    env = {"IVR_ELDERLY_NUMBERS": "139 0000 0001, 13900000003"}
    assert load_settings(environ=env).elderly_numbers == ("139 0000 0001", "13900000003")


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("sip_prot = 5060\n", {}, "unknown setting 'sip_prot'"),
        ("[sip]\nport = 'five'\n", {}, "sip_port (from {cfg}): 'five' is not an integer"),
        ("max_calls = true\n", {}, "max_calls (from {cfg}): True is not an integer"),
        ("data_dir = 3\n", {}, "data_dir (from {cfg}): 3 is not a string"),
        ("", {"IVR_SIP_PORT": "x"}, "sip_port (from environment variable IVR_SIP_PORT): 'x' is not an integer"),
        ("", {"IVR_SIPPORT": "5060"}, "IVR_SIPPORT: unknown setting 'sipport' in the environment"),
        ("log_level = 'LOUD'\n", {}, "log_level: 'LOUD' is not one of DEBUG, INFO, WARNING, ERROR"),
        ("rtp_port_min = 30000\nrtp_port_max = 20000\n", {}, "rtp_port_min (30000) is above rtp_port_max (20000)"),
        ("port = [\n", {}, "{cfg}: not valid TOML"),
        ("[sip]\nport = 99999\n", {}, "sip_port: 99999 is not a port number (0-65535)"),
        ("", {"IVR_CONSOLE_PORT": "-1"}, "console_port: -1 is not a port number (0-65535)"),
        ("database_url = 'mysql://ivr:secret@db/ivr'\n", {},
         "database_url: 'mysql://ivr:***@db/ivr' is not an SQLite or PostgreSQL URL"),
        ("database_url = 'ivr.db'\n", {}, "database_url: 'ivr.db' is not an SQLite or PostgreSQL URL"),
        ("[sip]\ntrusted = ['carrier-sbc']\n", {}, "sip_trusted: 'carrier-sbc' is not an IP address or network (CIDR)"),
        ("", {"IVR_SIP_ALLOW": "10.0.0.0/33"}, "sip_allow: '10.0.0.0/33' is not an IP address or network (CIDR)"),
        ("[sip]\ninvite_burst = 0\n", {}, "sip_invite_burst: 0 is below 1"),
        ("[sip]\nglobal_invite_rate = -1\n", {}, "sip_global_invite_rate: -1.0 is below 0"),
        ("drain_s = -5\n", {}, "drain_s: -5.0 is below 0"),
        ("timezone = 'Asia/Beijing'\n", {}, "timezone: 'Asia/Beijing' is not a time zone name like Asia/Shanghai"),
        ("", {"IVR_TIMEZONE": "../../etc/passwd"}, "timezone: '../../etc/passwd' is not a time zone name"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, env: dict[str, str], message: str) -> None:
    cfg = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, environ=env)
    assert message.format(cfg=cfg) in str(err.value)


def test_front_door_limits_from_file_and_env(tmp_path: Path) -> None:
    cfg = write(tmp_path, "drain_s = 10\n[sip]\ntrusted = ['10.0.0.1']\ninvite_rate = 5\nglobal_invite_rate = 0\n"
                          "[rtp]\ntimeout_s = 20\n")
    s = load_settings(cfg, environ={"IVR_SIP_ALLOW": "10.0.0.0/24, 192.0.2.7"})
    assert (s.sip_trusted, s.sip_allow) == (("10.0.0.1",), ("10.0.0.0/24", "192.0.2.7"))
    assert (s.sip_invite_rate, s.sip_invite_burst, s.sip_global_invite_rate) == (5.0, 40, 0.0)
    assert (s.drain_s, s.rtp_timeout_s) == (10.0, 20.0)


def test_config_file_not_in_utf8(tmp_path: Path) -> None:
    cfg = tmp_path / "ivr.toml"
    cfg.write_bytes("[sip]\nport = 5060\n# 热线\n".encode("gbk"))
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, environ={})
    assert str(err.value) == f"{cfg}: not UTF-8 text (byte 0xc8 on line 3); save it as UTF-8"


def test_postgresql_urls_use_the_shipped_driver(tmp_path: Path) -> None:
    for url in ("postgresql://ivr@db/ivr", "postgres://ivr@db/ivr", "postgresql+psycopg://ivr@db/ivr"):
        s = load_settings(overrides={"data_dir": tmp_path, "database_url": url}, environ={})
        assert s.database_url == "postgresql+psycopg://ivr@db/ivr"


def test_the_centres_queue_is_in_postgresql_or_on_the_node(tmp_path: Path) -> None:
    assert load_settings(overrides={"data_dir": tmp_path}, environ={}).queue_database_url == ""
    s = load_settings(overrides={"data_dir": tmp_path}, environ={"IVR_QUEUE_DATABASE_URL": "postgresql://ivr@db/q"})
    assert s.queue_database_url == "postgresql+psycopg://ivr@db/q"
    for url, why in (("sqlite:///q.db", "'sqlite:///q.db' is not a PostgreSQL URL (postgresql://USER@HOST/DB)"),
                     ("mysql://ivr:secret@db/q", "'mysql://ivr:***@db/q' is not a PostgreSQL URL "
                                                 "(postgresql://USER@HOST/DB)")):
        with pytest.raises(ConfigError) as err:
            load_settings(overrides={"data_dir": tmp_path, "queue_database_url": url}, environ={})
        assert str(err.value) == f"queue_database_url: {why}"
    with pytest.raises(ConfigError) as err:
        load_settings(overrides={"data_dir": tmp_path, "queue_node_timeout_s": 0}, environ={})
    assert str(err.value) == "queue_node_timeout_s: 0.0 is not above 0"


def test_folders_that_cannot_be_created_name_their_setting(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    Settings(data_dir=tmp_path / "ok").make_dirs()
    assert (tmp_path / "ok" / "recordings").is_dir()
    with pytest.raises(ConfigError) as err:
        Settings(data_dir=tmp_path / "file" / "ivr").make_dirs()
    assert str(err.value) == f"data_dir: cannot create the folder {tmp_path / 'file' / 'ivr'} (Not a directory)"
    with pytest.raises(ConfigError) as err:
        Settings(data_dir=tmp_path / "ok", database_url=f"sqlite:///{tmp_path}/file/db/ivr.db").make_dirs()
    assert str(err.value) == f"database_url: cannot create the folder {tmp_path / 'file' / 'db'} (Not a directory)"


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises(AttributeError):
        s.sip_port = 1  # type: ignore[misc]


def test_node_id_defaults_to_the_host_name_and_a_bad_one_names_the_key(tmp_path: Path) -> None:
    import socket

    assert load_settings(overrides={"data_dir": tmp_path}, environ={}).node_id == socket.gethostname()
    assert load_settings(overrides={"data_dir": tmp_path}, environ={"IVR_NODE_ID": "ivr-b"}).node_id == "ivr-b"
    with pytest.raises(ConfigError) as err:
        load_settings(overrides={"data_dir": tmp_path}, environ={"IVR_NODE_ID": "node a"})
    assert str(err.value) == "node_id: 'node a' is not 1-64 letters, digits, '.', '_' or '-'"


def test_secure_cookies_setting_from_file_and_env(tmp_path: Path) -> None:
    assert load_settings(overrides={"data_dir": tmp_path}, environ={}).console_secure_cookies is False
    cfg = write(tmp_path, "[console]\nsecure_cookies = true\n")
    assert load_settings(cfg, environ={}).console_secure_cookies is True
    for raw, value in (("1", True), ("Yes", True), ("on", True), ("0", False), ("false", False), ("off", False)):
        assert load_settings(cfg, environ={"IVR_CONSOLE_SECURE_COOKIES": raw}).console_secure_cookies is value
    with pytest.raises(ConfigError) as exc:
        load_settings(environ={"IVR_CONSOLE_SECURE_COOKIES": "maybe"})
    assert str(exc.value) == ("console_secure_cookies (from environment variable IVR_CONSOLE_SECURE_COOKIES): "
                              "'maybe' is not true or false")
    with pytest.raises(ConfigError) as exc:
        load_settings(write(tmp_path, "[console]\nsecure_cookies = 'sometimes'\n"), environ={})
    assert "console_secure_cookies" in str(exc.value) and "is not true or false" in str(exc.value)


def test_the_hotlines_local_time_is_beijings_whatever_the_machines(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).tz == ZoneInfo("Asia/Shanghai")
    assert load_settings(write(tmp_path, ""), environ={"IVR_TIMEZONE": "Asia/Urumqi"}).tz == ZoneInfo("Asia/Urumqi")
