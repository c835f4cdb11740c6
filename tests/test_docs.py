"""The README stays true: every setting and every command is documented."""

from __future__ import annotations

import argparse
import dataclasses
import re

from conftest import ROOT

from kb.cli.parser import make_parser
from kb.config import Settings, SettingsError

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_documented() -> None:
    for field in dataclasses.fields(Settings):
        assert f"KB_{field.name.upper()}" in README, field.name


def test_every_command_is_documented() -> None:
    parser = make_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name in commands.choices:
        assert re.search(rf"`(python build\.py` or `)?kb {name}\b", README) or name == "build", name


def test_readme_has_exactly_the_two_set_up_commands() -> None:
    setup = README.split("## Set up", 1)[1].split("## Commands", 1)[0]
    commands = re.findall(r"```sh\n(.*?)\n```", setup, re.S)
    assert commands[:2] == [
        "python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/kb serve",
        "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/pytest",
    ]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert commands[1] in ci


def test_a_bad_setting_names_the_variable_and_the_value() -> None:
    try:
        Settings.from_env({"KB_PORT": "x"})
    except SettingsError as exc:
        assert exc.message == "KB_PORT='x' : nombre entier attendu"
    else:
        raise AssertionError("no error")


def test_trusted_proxies_are_addresses_or_networks() -> None:
    assert Settings.from_env({"KB_TRUSTED_PROXIES": "10.0.0.1, 10.1.0.0/16"}).trusted_proxies
    try:
        Settings.from_env({"KB_TRUSTED_PROXIES": "10.0.0.1,proxy.local"})
    except SettingsError as exc:
        assert exc.message == (
            "KB_TRUSTED_PROXIES='10.0.0.1,proxy.local' : adresses IP ou réseaux (10.0.0.0/8) "
            "séparés par des virgules, ou * attendus"
        )
    else:
        raise AssertionError("no error")
