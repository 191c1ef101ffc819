"""Operators and their desks in the settings file: parsed into typed values, every bad value named."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ivr.config import AgentConfig, AgentGroup, ConfigError, load_settings
from ivr.hotline.queueing import QueueOptions

GROUPS = """
[[queue.groups]]
name = "general"
wrap_up_s = 10
[[queue.groups]]
name = "elderly"
wrap_up_s = 20.5
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "ivr.toml"
    p.write_text(text, encoding="utf-8")
    return p


def agent(**fields: object) -> str:
    values = {"id": "'op1'", "uri": "'sip:op1@10.0.0.21:5060'", "groups": "['general']"}
    values.update({k: str(v) for k, v in fields.items()})
    return "[[queue.agents]]\n" + "".join(f"{k} = {v}\n" for k, v in values.items() if v != "None")


def test_defaults_two_desks_and_no_operator(tmp_path: Path) -> None:
    s = load_settings(overrides={"data_dir": tmp_path}, environ={})
    assert s.queue_groups == (AgentGroup("general", 10.0), AgentGroup("elderly", 15.0))
    assert s.queue_agents == ()
    assert (s.queue_trunk, s.queue_callback_threshold_s) == ("", 180.0)


def test_queue_tables_parsed(tmp_path: Path) -> None:
    cfg = write(tmp_path, "[queue]\ntrunk = 'pbx.local:5060'\ncallback_threshold_s = 120\n" + GROUPS
                + agent(name="'王芳'", groups="['general', 'elderly']", user="' wangfang '")
                + agent(id="'op2'", uri="'sips:op2@pbx.local;transport=tls'"))
    s = load_settings(cfg, environ={})
    assert s.queue_trunk == "pbx.local:5060" and s.queue_callback_threshold_s == 120.0
    assert s.queue_groups == (AgentGroup("general", 10.0), AgentGroup("elderly", 20.5))
    assert s.queue_agents == (
        AgentConfig("op1", "王芳", "sip:op1@10.0.0.21:5060", ("general", "elderly"), "wangfang"),
        AgentConfig("op2", "op2", "sips:op2@pbx.local;transport=tls", ("general",)),
    )
    assert s.queue_agents[1].user == ""  # not mapped to a console user


def test_transfer_by_refer_reaches_the_desk(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, "[queue]\ntransfer = 'refer'\nrefer_busy_s = 420\n"), environ={})
    desk = QueueOptions.from_settings(s).desk
    assert (desk.transfer, desk.refer_busy_s) == ("refer", 420.0)
    assert QueueOptions.from_settings(load_settings(environ={})).desk.transfer == "bridge"


def test_threshold_from_environment(tmp_path: Path) -> None:
    env = {"IVR_QUEUE_CALLBACK_THRESHOLD_S": "90.5"}
    assert load_settings(environ=env).queue_callback_threshold_s == 90.5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (agent(uri="'op1@10.0.0.21'"),
         "queue_agents (from {cfg}): agent 'op1': uri 'op1@10.0.0.21' is not a SIP URI like sip:op1@10.0.0.5:5060"),
        (agent(uri="'sip:op1@host:port'"),
         "queue_agents (from {cfg}): agent 'op1': uri 'sip:op1@host:port' is not a SIP URI like "
         "sip:op1@10.0.0.5:5060"),
        (agent(uri=None), "queue_agents (from {cfg}): agent 'op1': missing 'uri'"),
        (agent(id=None), "queue_agents (from {cfg}): agent 1: missing 'id'"),
        (agent(id="'op 1'"),
         "queue_agents (from {cfg}): agent 1: id 'op 1' is not 1-64 letters, digits, '.', '_' or '-'"),
        (agent(groups="[]"),
         "queue_agents (from {cfg}): agent 'op1': groups [] is not a non-empty list of group names"),
        (agent(groups="'general'"),
         "queue_agents (from {cfg}): agent 'op1': groups 'general' is not a non-empty list of group names"),
        (agent(name="''"), "queue_agents (from {cfg}): agent 'op1': name '' is not a non-empty string"),
        (agent(phone="'13812345678'"), "queue_agents (from {cfg}): agent 'op1': unknown field 'phone'"),
        (agent(user="'wf'", login="'wf'"), "queue_agents (from {cfg}): agent 'op1': unknown field 'login'"),
        (agent(user="''"), "queue_agents (from {cfg}): agent 'op1': user '' is not a non-empty string"),
        (agent(user="'  '"), "queue_agents (from {cfg}): agent 'op1': user '  ' is not a non-empty string"),
        (agent(user="7"), "queue_agents (from {cfg}): agent 'op1': user 7 is not a non-empty string"),
        (agent(user="['wf']"), "queue_agents (from {cfg}): agent 'op1': user ['wf'] is not a non-empty string"),
        (agent(user="'wf'") + agent(id="'op2'") + agent(id="'op3'", user="'wf'"),
         "queue_agents: agents 'op1' and 'op3' have the same user 'wf'"),
        (agent() + agent(), "queue_agents: agent 'op1' is listed twice"),
        (agent(groups="['general', 'vip']"),
         "queue_agents: agent 'op1': unknown group 'vip' (groups: general, elderly)"),
        (GROUPS.replace("wrap_up_s = 10", "wrap_up_s = -1"),
         "queue_groups (from {cfg}): group 'general': wrap_up_s -1 is not a number of seconds"),
        (GROUPS.replace("elderly", "general"), "queue_groups: group 'general' is listed twice"),
        ("[queue]\ngroups = []\n", "queue_groups: at least one group is needed"),
        ("[queue]\nagents = 'op1'\n", "queue_agents (from {cfg}): 'op1' is not a list of tables"),
        ("[queue]\nagents = ['op1']\n", "queue_agents (from {cfg}): agent 1 is not a table"),
        ("[queue]\ntrunk = 'pbx.local'\n", "queue_trunk: 'pbx.local' is not host:port"),
        ("[queue]\ntrunk = 'pbx.local:70000'\n", "queue_trunk: 'pbx.local:70000' is not host:port"),
        ("[queue]\ncallback_threshold_s = 'soon'\n",
         "queue_callback_threshold_s (from {cfg}): 'soon' is not a number"),
        ("[queue]\ncallback_threshold_s = -5\n", "queue_callback_threshold_s: -5.0 is below 0"),
        ("[queue]\nagent = []\n", "{cfg}: unknown setting 'queue_agent'"),
        ("[queue]\ntransfer = 'blind'\n", "queue_transfer: 'blind' is not bridge or refer"),
        ("[queue]\nrefer_busy_s = 0\n", "queue_refer_busy_s: 0.0 is not above 0"),
    ],
)
def test_bad_queue_values_name_the_key_and_agent(tmp_path: Path, text: str, message: str) -> None:
    cfg = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, environ={})
    assert str(info.value) == message.format(cfg=cfg)


def test_agents_cannot_come_from_the_environment() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"IVR_QUEUE_AGENTS": "op1"})
    assert str(info.value) == ("queue_agents (from environment variable IVR_QUEUE_AGENTS): 'op1' "
                               "is not a list of tables")


def test_readme_example_parses(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")
    example = readme.split("## Configuration", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    example = example.replace('"/var/lib/ivr"', repr(str(tmp_path)))
    s = load_settings(write(tmp_path, example), environ={})
    assert [a.agent_id for a in s.queue_agents] == ["op1"] and s.queue_groups[1] == AgentGroup("elderly", 20.0)
    assert s.queue_agents[0].user == "wangfang"


def test_same_user_checked_on_settings_made_in_code(tmp_path: Path) -> None:
    op1 = AgentConfig("op1", "王芳", "sip:op1@10.0.0.21:5060", ("general",), "wangfang")
    op2 = AgentConfig("op2", "李强", "sip:op2@10.0.0.22:5060", ("general",))
    s = load_settings(overrides={"data_dir": tmp_path, "queue_agents": (op1, op2)}, environ={})
    assert [a.user for a in s.queue_agents] == ["wangfang", ""]
    same = (op1, dataclasses.replace(op2, user="wangfang"))
    with pytest.raises(ConfigError) as info:
        load_settings(overrides={"data_dir": tmp_path, "queue_agents": same}, environ={})
    assert str(info.value) == "queue_agents: agents 'op1' and 'op2' have the same user 'wangfang'"
