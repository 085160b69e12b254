"""Config loading: every bad config beside its exact message, includes, packs, the example."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from monitord.config import SECTIONS, AgentConfig, Defaults, HealerConfig, load_config
from monitord.discover.rules import (
    ApacheSource,
    DownRules,
    NginxSource,
    Override,
    PhpFpmSource,
    SlowRules,
)
from monitord.errors import ConfigError
from monitord.probes import REGISTRY
from monitord.probes.base import CheckBase, HealStep

ROOT = Path(__file__).resolve().parent.parent
BAD = Path(__file__).parent / "config" / "bad"
EXAMPLE = ROOT / "etc" / "monitord" / "monitord.toml"


@pytest.mark.parametrize("case", sorted(p.stem for p in BAD.glob("*.toml")))
def test_bad_config_reports_exact_message(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(BAD)
    expected = (BAD / f"{case}.expected").read_text().splitlines()
    with pytest.raises(ConfigError) as caught:
        load_config(f"{case}.toml")
    assert caught.value.problems == expected


def test_every_bad_config_has_an_expected_message() -> None:
    assert {p.stem for p in BAD.glob("*.toml")} == {p.stem for p in BAD.glob("*.expected")}


def test_three_mistakes_are_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(BAD)
    with pytest.raises(ConfigError) as caught:
        load_config("three_mistakes.toml")
    assert len(caught.value.problems) == 3


def test_example_config_loads_with_the_system_pack(tmp_path: Path) -> None:
    config = load_config(EXAMPLE, state_dir=str(tmp_path))
    assert {c.name for c in config.checks} >= {"load", "memory", "swap", "disk-space"}
    assert config.agent.state_dir == str(tmp_path)
    assert all(c.priority in ("P2", "P3") for c in config.checks)


@pytest.mark.parametrize("pack", sorted((ROOT / "checks").glob("*.toml")), ids=lambda p: p.stem)
def test_stock_pack_is_valid(pack: Path, tmp_path: Path) -> None:
    main = tmp_path / "monitord.toml"
    main.write_text(f'include = ["pack:{pack.stem}"]\n')
    config = load_config(main)
    assert config.checks, f"{pack.name} defines no checks"
    assert all(c.description for c in config.checks), "every pack check says what it watches"


def _options() -> set[str]:
    keys = set(AgentConfig.model_fields) | set(Defaults.model_fields)
    keys |= set(HealerConfig.model_fields) | set(HealStep.model_fields)
    for section in SECTIONS.values():
        keys |= set(section.model_fields)
    for nested in (NginxSource, ApacheSource, PhpFpmSource, SlowRules, DownRules, Override):
        keys |= set(nested.model_fields)
    for kind in REGISTRY.values():
        keys |= set(kind.config.model_fields)
    return keys - SITES_TABLES


SITES_TABLES = {"nginx", "apache2", "php_fpm", "slow", "down", "override"}


def test_example_config_documents_the_tables_of_sites() -> None:
    text = EXAMPLE.read_text()
    missing = [t for t in SITES_TABLES if f"[sites.{t}]" not in text
               and f"[[sites.{t}]]" not in text]
    assert not missing


def test_example_config_documents_every_option() -> None:
    documented = set(re.findall(r"^#? ?(\w+) = ", EXAMPLE.read_text(), re.MULTILINE))
    missing = _options() - documented
    assert not missing, f"not documented in {EXAMPLE.name}: {sorted(missing)}"


def test_defaults_apply_and_a_check_key_wins(tmp_path: Path) -> None:
    main = tmp_path / "monitord.toml"
    main.write_text(
        '[defaults]\nevery = "20s"\nfail_after = 5\n\n'
        '[[check]]\nname = "a"\nprobe = "load"\n\n'
        '[[check]]\nname = "b"\nprobe = "load"\nfail_after = 1\n'
    )
    config = load_config(main)
    a, b = config.check("a"), config.check("b")
    assert (a.every, a.fail_after) == (20.0, 5)
    assert (b.every, b.fail_after) == (20.0, 1)


def test_includes_expand_globs_relative_to_the_main_file(tmp_path: Path) -> None:
    (tmp_path / "checks.d").mkdir()
    for name in ("b", "a"):
        (tmp_path / "checks.d" / f"{name}.toml").write_text(
            f'[[check]]\nname = "{name}"\nprobe = "load"\n'
        )
    main = tmp_path / "monitord.toml"
    main.write_text('include = ["checks.d/*.toml", "empty.d/*.toml"]\n')
    config = load_config(main)
    assert [c.name for c in config.checks] == ["a", "b"]
    assert len(config.files) == 3


def test_unknown_check_name_suggests_the_nearest(tmp_path: Path) -> None:
    main = tmp_path / "monitord.toml"
    main.write_text('[[check]]\nname = "disk-space"\nprobe = "disk"\n')
    with pytest.raises(ConfigError, match='did you mean "disk-space"'):
        load_config(main).check("disk-spce")


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.toml")
    assert caught.value.problems == [f"{tmp_path / 'nope.toml'}: no such file"]


def test_check_models_share_the_base_keys() -> None:
    for kind in REGISTRY.values():
        assert issubclass(kind.config, CheckBase)
        assert set(CheckBase.model_fields) <= set(kind.config.model_fields)


def test_snmp_thresholds_may_name_the_oids_and_rates_the_check_names(tmp_path: Path) -> None:
    main = tmp_path / "monitord.toml"
    main.write_text(
        '[[check]]\nname = "router"\nprobe = "snmp"\ncommunity = "public"\n'
        'oids = { cpu_load = "1.3.6.1.4.1.2021.10.1.3.1" }\n'
        'rates = { wan_in = "1.3.6.1.2.1.31.1.1.1.6.2" }\n'
        'warn = { cpu_load = 80, wan_in = 1e8 }\ncrit = { response_seconds = 2 }\n')
    check = load_config(main).check("router")
    assert set(check.warn) == {"cpu_load", "wan_in"}
    main.write_text(main.read_text().replace("warn = { cpu_load", "warn = { cpu_lod"))
    expected = r'warn\.cpu_lod: unknown metric.*did you mean "cpu_load"'
    with pytest.raises(ConfigError, match=expected):
        load_config(main)


def test_an_include_that_is_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "checks.toml")        # reading it would wait for a writer forever
    main = tmp_path / "monitord.toml"
    main.write_text('include = ["checks.toml"]\n')
    with pytest.raises(ConfigError) as caught:
        load_config(main)
    assert caught.value.problems == [
        f"{tmp_path / 'checks.toml'}: not a regular file (a FIFO); expected a TOML file"]


def test_an_include_that_loops_through_symlinks_says_so(tmp_path: Path) -> None:
    (tmp_path / "a.toml").symlink_to(tmp_path / "b.toml")
    (tmp_path / "b.toml").symlink_to(tmp_path / "a.toml")
    main = tmp_path / "monitord.toml"
    main.write_text('include = ["a.toml"]\n')
    with pytest.raises(ConfigError) as caught:
        load_config(main)
    assert caught.value.problems == [f"{tmp_path / 'a.toml'}: cannot read: a loop of "
                                     "symbolic links"]


def test_a_long_chain_of_dependencies_is_refused_without_recursion(tmp_path: Path) -> None:
    main = tmp_path / "monitord.toml"
    main.write_text("".join(f'[[check]]\nname = "c{i}"\nprobe = "load"\n'
                            + (f'depends_on = ["c{i - 1}"]\n' if i else "")
                            for i in range(3000)))
    with pytest.raises(ConfigError, match=r"a chain of \d+ checks is too deep \(at most 32\)"):
        load_config(main)
