"""``monitord central``: its arguments and what each of its actions does.

Only argparse at import time: the ``monitord`` parser is built for every command an
agent runs, and must not import the central service to do it. The on-call actions'
arguments are in ``monitord.oncall_args``.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sys
from collections.abc import Awaitable, Callable

from monitord.errors import MonitordError
from monitord.oncall_args import add_parsers as add_oncall_parsers

# The central service's, as monitord.central.config has them: repeated here so that
# building the parser does not import the central service into every agent.
CENTRAL_CONFIG = "/etc/monitord/central.toml"
CENTRAL_CONFIG_ENV = "MONITORD_CENTRAL_CONFIG"

log = logging.getLogger("monitord")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``monitord central`` and its actions, added to ``sub``."""
    config_help = (f"central config file (default: ${CENTRAL_CONFIG_ENV} or "
                   f"{CENTRAL_CONFIG})")
    central = sub.add_parser(
        "central", help="run the central incident service, migrate its store, add tokens or "
                        "users, manage people, schedules and escalation policies",
        description="Without an ACTION, run the central incident service in the foreground "
                    "(SIGTERM or SIGINT stops it).")
    central.add_argument("-c", "--config", help=config_help,
                         default=os.environ.get(CENTRAL_CONFIG_ENV) or CENTRAL_CONFIG)
    central.add_argument("--listen", metavar="HOST:PORT",
                         help="listen here instead of [central] listen (for several "
                              "processes on one host sharing one config)")
    central.set_defaults(func=_central)
    tokens = central.add_subparsers(dest="central_command", metavar="ACTION")
    for kind, help_text in (("agent", "print a new token for agent HOST (replaces its old one)"),
                            ("operator", "print a new token for person NAME (replaces theirs)"),
                            ("scraper", "print a new read-only token for scraper NAME: it may "
                                        "only GET /metrics (replaces its old one)")):
        action = tokens.add_parser(f"add-{kind}", help=help_text)
        action.add_argument("name", metavar="HOST" if kind == "agent" else "NAME")
        # SUPPRESS: a -c given before the action is not reset by this parser's default.
        action.add_argument("-c", "--config", default=argparse.SUPPRESS, help=config_help)
        action.set_defaults(func=_add_token, kind=kind)
    user = tokens.add_parser(
        "add-user", help="set person NAME's web console password (ends their sessions)",
        description="Reads the password twice from the terminal, or one line from standard "
                    "input when it is not a terminal (`... add-user NAME < file`); at least "
                    "12 characters. It is never echoed, logged or stored: only its scrypt hash.")
    user.add_argument("name", metavar="NAME")
    user.add_argument("-c", "--config", default=argparse.SUPPRESS, help=config_help)
    user.set_defaults(func=_add_user)
    migrate = tokens.add_parser(
        "migrate", help="create or upgrade the store's schema, and say what was done",
        description="Apply the schema files the store lacks (running the service does "
                    "this too); several processes may run it at once.")
    migrate.add_argument("-c", "--config", default=argparse.SUPPRESS, help=config_help)
    migrate.set_defaults(func=_central_migrate)
    report = tokens.add_parser(
        "sla-report", help="per priority: incidents opened, time to acknowledge, breaches",
        description="For the incidents opened in the last --since: how many, how soon a "
                    "person acknowledged them (median and worst), and how many missed "
                    "their response target.")
    report.add_argument("--since", default="7d", type=_duration_arg,
                        help='how far back, like "24h" or "30d" (default 7d)')
    report.add_argument("-c", "--config", default=argparse.SUPPRESS, help=config_help)
    report.set_defaults(func=_sla_report)
    add_oncall_parsers(tokens, config_help, _oncall)


def _central(args: argparse.Namespace) -> int:
    from monitord.central.config import load_central_config
    from monitord.central.server import serve

    _setup_logging(logging.INFO)
    config = load_central_config(args.config)
    if args.listen is not None:
        config = config.listening_on(args.listen)
    asyncio.run(_until_signal(lambda stop: serve(config, stop)))
    log.info("central: stopped")
    return 0


def _central_migrate(args: argparse.Namespace) -> int:
    from monitord.central.config import load_central_config

    config = load_central_config(args.config)
    print(asyncio.run(config.migrate()))
    return 0


def _sla_report(args: argparse.Namespace) -> int:
    from monitord.central.config import load_central_config
    from monitord.central.sla import sla_report
    from monitord.events import utc_now

    config = load_central_config(args.config)
    print(asyncio.run(sla_report(config, args.since, utc_now())))
    return 0


def _oncall(args: argparse.Namespace) -> int:
    from monitord.central.config import load_central_config
    from monitord.central.oncall.manage import run
    from monitord.events import utc_now

    # Who changed what goes to stderr (the journal under systemd), as the service logs.
    _setup_logging(logging.INFO)
    config = load_central_config(args.config)
    print(asyncio.run(run(config, args, utc_now)))
    return 0


def _duration_arg(text: str) -> float:
    from monitord.durations import parse_duration

    try:
        seconds = parse_duration(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'expected a duration like "24h" or "7d", got "{text}"') from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f'expected a duration above zero, got "{text}"')
    return seconds


def _add_token(args: argparse.Namespace) -> int:
    from monitord.central.config import load_central_config
    from monitord.central.server import add_token

    config = load_central_config(args.config)
    print(asyncio.run(add_token(config, args.kind, args.name)))
    return 0


def _add_user(args: argparse.Namespace) -> int:
    from monitord.central.config import load_central_config
    from monitord.central.server import add_user, check_name

    config = load_central_config(args.config)
    check_name("user", args.name)
    asyncio.run(add_user(config, args.name, _read_password(args.name)))
    print(f"password set for {args.name}: sign in at /console/ of the central service")
    return 0


def _read_password(name: str) -> str:
    """Twice from the terminal without echo; else the first line of standard input."""
    from monitord.central.passwords import password_problem

    if sys.stdin is None:
        return ""
    if not sys.stdin.isatty():
        try:
            return sys.stdin.readline().removesuffix("\n").removesuffix("\r")
        except UnicodeDecodeError:
            raise MonitordError("the password on standard input is not UTF-8 text") from None
    try:
        password = getpass.getpass(f"password for {name}: ")
        problem = password_problem(password)
        if problem:
            raise MonitordError(problem)
        if getpass.getpass("the same again: ") != password:
            raise MonitordError("the two passwords differ; nothing was changed")
    except EOFError:
        raise MonitordError("no password given; nothing was changed") from None
    return password


async def _until_signal(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run ``main(stop)``; SIGTERM or SIGINT sets ``stop``, a second one exits at once."""
    from monitord.signals import handle_signals

    stop = asyncio.Event()
    handle_signals(stop)
    await main(stop)


def _setup_logging(level: int) -> None:
    from monitord.logs import setup

    setup(level)
