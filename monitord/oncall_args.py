"""The arguments of ``monitord central`` person, contact, schedule, policy and oncall.

Only argparse here, outside the central package: the ``monitord`` parser is built for
every command an agent runs, and must not import the central service to do it.
``monitord.central.oncall.manage`` does the work.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    Actions: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]

STEP_HELP = ('a step: a share of the response target (0 to 1, or "50%%") and whom it '
             'tells, like "0: schedule:primary" or "0.5: person:bob, channel:ops-chat" '
             "(repeat, in order; the first has share 0)")


def add_parsers(actions: Actions, config_help: str, func: Callable[[Any], int]) -> None:
    """The on-call actions, each running ``func`` with ``oncall`` set to its name."""

    def action(parent: Actions, name: str, key: str, help: str,
               description: str | None = None) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = parent.add_parser(name, help=help,
                                                            description=description)
        # SUPPRESS: a -c given before the action is not reset by this parser's default.
        parser.add_argument("-c", "--config", default=argparse.SUPPRESS, help=config_help)
        parser.set_defaults(func=func, oncall=key)
        return parser

    def group(name: str, help_text: str) -> Actions:
        parser = actions.add_parser(name, help=help_text)
        return parser.add_subparsers(dest=f"{name}_action", metavar="ACTION", required=True)

    people = group("person", "add people who can be paged, list them with their contacts")
    action(people, "add", "person-add", help="add person NAME (no password, no token)"
           ).add_argument("name", metavar="NAME")
    action(people, "list", "person-list", help="every person and their contact methods")

    contacts = group("contact", "add or remove a person's contact method")
    for verb in ("add", "remove"):
        parser = action(contacts, verb, f"contact-{verb}",
                        help=f"{verb} a contact method of person NAME",
                        description="KIND is mail (an address), webhook or slack (a URL, "
                                    "kept secret), or pagerduty (the absolute path of a file "
                                    "whose first line is the integration key).")
        parser.add_argument("name", metavar="NAME")
        parser.add_argument("kind", metavar="KIND",
                            choices=["mail", "webhook", "slack", "pagerduty"])
        parser.add_argument("address", metavar="ADDRESS")

    schedules = group("schedule", "rotations: add one, show who is on call, add an override")
    add = action(schedules, "add", "schedule-add",
                 help="add a rotation of MEMBERs who take turns, in order",
                 description="The hand-off is at --handoff local time in --zone, every day "
                             "or every week (on the weekday of --starts), and stays at that "
                             "local time across daylight saving changes.")
    add.add_argument("name", metavar="NAME")
    add.add_argument("members", metavar="MEMBER", nargs="+", help="people, in turn order")
    add.add_argument("--zone", required=True, help='an IANA time zone, like "Europe/Berlin"')
    add.add_argument("--handoff", default="09:00", help='local time, "HH:MM" (default 09:00)')
    add.add_argument("--rotation", choices=["daily", "weekly"], default="weekly",
                     help="how often the next member takes over (default weekly)")
    add.add_argument("--starts", metavar="YYYY-MM-DD",
                     help="the first MEMBER's first day (default today, in --zone)")
    add.add_argument("--replace", action="store_true",
                     help="replace the schedule of that name (its overrides stay)")
    show = action(schedules, "show", "schedule-show",
                  help="a schedule (or every one): members, now, next, overrides")
    show.add_argument("name", metavar="NAME", nargs="?")
    override = action(schedules, "override", "schedule-override",
                      help="put PERSON on call for schedule NAME from --from to --until")
    override.add_argument("name", metavar="NAME")
    override.add_argument("person", metavar="PERSON")
    override.add_argument("--from", dest="starts", required=True, metavar="TIME",
                          help='"YYYY-MM-DD HH:MM" in the schedule\'s zone, or ISO with offset')
    override.add_argument("--until", dest="ends", required=True, metavar="TIME",
                          help="as --from")
    dropped = action(schedules, "remove-override", "schedule-remove-override",
                     help="remove override ID (as schedule show numbers it) of schedule NAME")
    dropped.add_argument("name", metavar="NAME")
    dropped.add_argument("id", metavar="ID", type=int)
    action(schedules, "remove", "schedule-remove",
           help="remove schedule NAME, its members and overrides (not while a policy "
                "names it)").add_argument("name", metavar="NAME")

    policies = group("policy", "escalation policies: who is told at each step, and when")
    put = action(policies, "set", "policy-set", help="add or replace policy NAME",
                 description="Incidents of the policy's priorities are told to its first "
                             "step at once, and to each later step once its share of the "
                             "priority's response target has passed with nobody "
                             "acknowledging. A priority with no policy is routed by the "
                             "config's [escalation] chain.")
    put.add_argument("name", metavar="NAME")
    put.add_argument("--priority", action="append", required=True, metavar="P",
                     help="a priority it covers: P1, P2, P3 (repeatable, or P1,P2)")
    put.add_argument("--step", action="append", required=True, help=STEP_HELP)
    action(policies, "show", "policy-show", help="a policy (or every one), step by step"
           ).add_argument("name", metavar="NAME", nargs="?")
    action(policies, "remove", "policy-remove", help="remove policy NAME"
           ).add_argument("name", metavar="NAME")

    action(actions, "oncall", "oncall", help="who is on call now and next, per schedule")
