"""The ``monitord`` command: run, test, check-config, packs, maintenance, central."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from monitord import __version__
from monitord.cli_central import add_parser as add_central_parser
from monitord.config import Config, load_config
from monitord.errors import ConfigError, MonitordError, NotRunning
from monitord.model import Priority, Result

DEFAULT_CONFIG = "/etc/monitord/monitord.toml"

log = logging.getLogger("monitord")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as e:
        for problem in e.problems:
            print(f"monitord: {problem}", file=sys.stderr)
        return 2
    except NotRunning as e:
        print(e, file=sys.stderr)  # the sentence names monitord already
        return 3
    except MonitordError as e:
        print(f"monitord: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`monitord packs | head`): not an error of ours. Point
        # stdout at /dev/null so the interpreter's final flush does not fail again
        # (the Python documentation's recipe for SIGPIPE).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="monitord", description="Monitoring and self-healing daemon for hosting servers."
    )
    parser.add_argument("--version", action="version", version=f"monitord {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the daemon in the foreground")
    _config_arg(run)
    run.add_argument("--state-dir", help="keep state here instead of [agent] state_dir")
    run.add_argument("-v", "--verbose", action="store_true", help="log every probe result")
    run.add_argument("--log-format", choices=["auto", "plain", "journal", "json"],
                     default="auto", help="auto: journal lines under systemd, else plain")
    run.add_argument("--dry-run", action="store_true",
                     help="log the fixes that would run instead of running them")
    run.set_defaults(func=_run)

    test = sub.add_parser("test", help="run one check once and print its result")
    _config_arg(test)
    test.add_argument("name", help="the check's name")
    test.set_defaults(func=_test)

    check = sub.add_parser("check-config", help="validate the config and its includes")
    _config_arg(check)
    check.set_defaults(func=_check_config)

    status_cmd = sub.add_parser(
        "status", help="the running daemon's checks, failing first; exit 2 if any fails hard, "
                       "3 if no daemon answers")
    _config_arg(status_cmd)
    status_cmd.set_defaults(func=_status)

    disc = sub.add_parser("discover", help="the sites the web server serves: what would be "
                          "watched, what is skipped and why, what each depends on")
    _config_arg(disc)
    disc.add_argument("--format", choices=["table", "json", "toml"], default="table",
                      help="toml: the generated checks, as [[check]] tables")
    disc.set_defaults(func=_discover)

    packs = sub.add_parser("packs", help="list the stock check packs and what they watch")
    _config_arg(packs)
    packs.set_defaults(func=_packs)

    maint = sub.add_parser("maintenance", help="pause fixes and escalation, with an expiry")
    _config_arg(maint)
    maint.add_argument("--state-dir", help="the daemon's state directory, if not the config's")
    maint.add_argument("action", choices=["on", "off", "list"])
    maint.add_argument("check", nargs="?", help="one check; without it, the whole host")
    maint.add_argument("--for", dest="duration", default="1h",
                       help='how long, like "30m" or "2h" (default 1h; at most 7d)')
    maint.add_argument("--reason", default="", help="why, for whoever looks next")
    maint.set_defaults(func=_maintenance)
    add_central_parser(sub)
    _incidents_parser(sub)
    return parser


def _incidents_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    incidents = sub.add_parser(
        "incidents", help="the on-call view: list, show, ack, resolve, comment",
        description="Without --url: the embedded store of this agent's config. With --url: "
                    "a central service, with an operator token.")
    _config_arg(incidents)
    incidents.add_argument("--url", help="a central service (default $MONITORD_CENTRAL_URL)")
    incidents.add_argument("--state-dir", help="the agent's state directory, if not the config's")
    incidents.add_argument("--token-file", help="operator token (default $MONITORD_TOKEN)")
    incidents.add_argument("action", choices=["list", "show", "ack", "resolve", "comment"])
    incidents.add_argument("id", nargs="?", type=int, help="the incident's number")
    incidents.add_argument("text", nargs="?", default="", help="the comment (comment only)")
    incidents.add_argument("--note", default="", help="a note with ack or resolve")
    incidents.add_argument("--all", action="store_true", help="list resolved ones too")
    incidents.add_argument("--priority", action="append", default=[],
                           type=Priority, choices=list(Priority),
                           help="only this priority (repeatable)")
    incidents.add_argument("--host", help="only this host")
    incidents.set_defaults(func=_incidents)


def _incidents(args: argparse.Namespace) -> int:
    from monitord import oncall

    async def work() -> str:
        desk = await oncall.open_desk(args.config, args.url, args.token_file, args.state_dir)
        try:
            text = args.text if args.action == "comment" else args.note
            return await oncall.run(desk, args.action, args.id, text, args.all,
                                    args.priority, args.host)
        finally:
            await desk.close()

    print(asyncio.run(work()))
    return 0


def _config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c", "--config", default=os.environ.get("MONITORD_CONFIG", DEFAULT_CONFIG),
        help=f"config file (default: $MONITORD_CONFIG or {DEFAULT_CONFIG})",
    )


def _check_config(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    from monitord.texts import plural

    print(f"OK: {plural(len(config.checks), 'check')} from "
          f"{plural(len(config.files), 'file')}")
    return 0


def _test(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    check = config.check(args.name)
    result = asyncio.run(_test_once(config, args.name))
    print(f"{check.name}: {result.status.name}: {result.summary}")
    for reading in result.readings:
        where = f" [{reading.where}]" if reading.labels else ""
        print(f"  {reading.name}{where} = {_value(reading.value)}")
    print(f"  (probe took {result.duration_seconds * 1000:.0f} ms)")
    return int(result.status)


async def _test_once(config: Config, name: str) -> Result:
    from monitord.agent.runner import run_check
    from monitord.probes.base import ProbeContext, Shared

    shared = Shared()
    try:
        return await run_check(config.check(name), ProbeContext(shared))
    finally:
        await shared.close()


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _status(args: argparse.Namespace) -> int:
    from monitord.agent.statusview import show_status

    text, failing = asyncio.run(show_status(load_config(args.config)))
    print(text)
    return 2 if failing else 0


def _discover(args: argparse.Namespace) -> int:
    from monitord.discover.expand import expand_found
    from monitord.discover.report import render
    from monitord.discover.run import discover

    config = load_config(args.config)
    if not config.sites.enabled:
        raise MonitordError(f'{args.config}: [sites] discover is empty: add the web servers '
                            'to read, like discover = ["nginx"]')
    found = asyncio.run(discover(config.sites))
    hand = {c.name for c in config.checks if c.name not in config.discovered.site_of}
    hand -= {c.name for c in config.discovered.checks}
    print(render(expand_found(found, [], config.sites, hand), args.format))
    return 1 if found.errors else 0


def _packs(args: argparse.Namespace) -> int:
    from monitord.packs import describe_packs

    print(describe_packs(args.config))
    return 0


def _maintenance(args: argparse.Namespace) -> int:
    from monitord.maintenance import command

    print(command(args.config, args.state_dir, args.action, args.check, args.duration,
                  args.reason))
    return 0


def _run(args: argparse.Namespace) -> int:
    _setup_logging(logging.DEBUG if args.verbose else logging.INFO, args.log_format)
    config = load_config(args.config, state_dir=args.state_dir)
    if config.sites.enabled and config.discovered.discovery is None:
        from monitord.agent.sites import discover_once

        if asyncio.run(discover_once(config)):
            config = load_config(args.config, state_dir=args.state_dir)
    if args.dry_run:
        config.healer = config.healer.model_copy(update={"dry_run": True})
    if not config.checks:
        log.warning("monitord: %s defines no checks; nothing to watch", args.config)
    from monitord.agent import eventloop
    from monitord.agent.service import serve

    def reload() -> Config:
        new = load_config(args.config, state_dir=args.state_dir)
        if args.dry_run:
            new.healer = new.healer.model_copy(update={"dry_run": True})
        return new

    eventloop.run(serve(config, reload))
    return 0


def _setup_logging(level: int, log_format: str = "auto") -> None:
    from monitord.logs import setup

    setup(level, log_format)


if __name__ == "__main__":
    raise SystemExit(main())
