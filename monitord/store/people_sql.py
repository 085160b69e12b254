"""The on-call statements (people's contacts, schedules, overrides, escalation policies):
their names, as ``ops.Statement`` has the incident rules', and their SQL in both dialects.

Kept apart from the incident rules' statements so that the two grow without touching each
other; ``ops.STATEMENTS`` includes these names, so each dialect must answer them too, and
the SQLite dialect learns here how to keep the parameters they bring (``TIME_PARAMS``,
``PLAIN_PARAMS``) and which columns come back as times (``TIME_COLUMNS``).
"""

from __future__ import annotations


class PeopleStatement:
    ADD_PERSON = "add_person"            # rows: the name, if it is new
    PERSON_EXISTS = "person_exists"
    PEOPLE = "people"
    CONTACTS = "contacts"
    ADD_CONTACT = "add_contact"          # rows: the contact's id, if it is new
    REMOVE_CONTACT = "remove_contact"    # rows: the contact's id, if there was one
    SCHEDULE_EXISTS = "schedule_exists"
    UPSERT_SCHEDULE = "upsert_schedule"
    CLEAR_MEMBERS = "clear_members"
    ADD_MEMBER = "add_member"
    SCHEDULES = "schedules"
    MEMBERS = "members"
    ADD_OVERRIDE = "add_override"        # rows: the override's id
    OVERRIDES = "overrides"              # those that end after :since
    REMOVE_OVERRIDE = "remove_override"  # rows: its id, if there was one
    POLICIES_NAMING = "policies_naming"  # rows: the policies with a :kind :name target
    REMOVE_SCHEDULE = "remove_schedule"  # rows: its name, if there was one
    UPSERT_POLICY = "upsert_policy"
    CLEAR_POLICY = "clear_policy"        # its targets and priorities
    CLEAR_PRIORITIES = "clear_priorities"
    PRIORITY_OWNER = "priority_owner"    # rows: the policy that has :priority
    ADD_POLICY_PRIORITY = "add_policy_priority"
    ADD_POLICY_TARGET = "add_policy_target"
    REMOVE_POLICY = "remove_policy"      # rows: its name, if there was one
    POLICIES = "policies"
    POLICY_PRIORITIES = "policy_priorities"
    POLICY_TARGETS = "policy_targets"


P = PeopleStatement
PEOPLE_STATEMENTS = frozenset(v for k, v in vars(PeopleStatement).items() if k.isupper())

# How the SQLite dialect keeps the parameters these statements bring; the rest
# ("name", "now", "kind", "priority", "share", "who", "id", "since") it knows already.
TIME_PARAMS = frozenset({"starts_at", "ends_at"})
PLAIN_PARAMS = frozenset({"address", "zone", "rotation", "handoff", "anchor", "position",
                          "person", "schedule", "step"})
TIME_COLUMNS = frozenset({"starts_at", "ends_at"})

# Statements that read the same in both dialects.
_COMMON: dict[str, str] = {
    P.ADD_PERSON: """INSERT INTO person (name, added_at) VALUES (:name, :now)
        ON CONFLICT (name) DO NOTHING RETURNING name""",
    P.PERSON_EXISTS: "SELECT name FROM person WHERE name = :name",
    P.PEOPLE: """SELECT name, password_hash IS NOT NULL AS can_sign_in FROM person
        ORDER BY name""",
    P.CONTACTS: "SELECT person, kind, address FROM contact ORDER BY person, kind, address",
    P.ADD_CONTACT: """INSERT INTO contact (person, kind, address, added_at)
        VALUES (:name, :kind, :address, :now)
        ON CONFLICT (person, kind, address) DO NOTHING RETURNING id""",
    P.REMOVE_CONTACT: """DELETE FROM contact
        WHERE person = :name AND kind = :kind AND address = :address RETURNING id""",
    P.SCHEDULE_EXISTS: "SELECT name FROM schedule WHERE name = :name",
    P.UPSERT_SCHEDULE: """INSERT INTO schedule (name, zone, rotation, handoff, anchor, added_at)
        VALUES (:name, :zone, :rotation, :handoff, :anchor, :now)
        ON CONFLICT (name) DO UPDATE SET zone = excluded.zone, rotation = excluded.rotation,
            handoff = excluded.handoff, anchor = excluded.anchor""",
    P.CLEAR_MEMBERS: "DELETE FROM schedule_member WHERE schedule = :name",
    P.ADD_MEMBER: """INSERT INTO schedule_member (schedule, position, person)
        VALUES (:name, :position, :person)""",
    P.SCHEDULES: "SELECT name, zone, rotation, handoff, anchor FROM schedule ORDER BY name",
    P.MEMBERS: """SELECT schedule, person FROM schedule_member
        ORDER BY schedule, position""",
    P.ADD_OVERRIDE: """INSERT INTO override (schedule, person, starts_at, ends_at, added_by,
            added_at)
        VALUES (:schedule, :person, :starts_at, :ends_at, :who, :now) RETURNING id""",
    P.OVERRIDES: """SELECT id, schedule, person, starts_at, ends_at, added_by FROM override
        WHERE ends_at > :since ORDER BY schedule, starts_at, id""",
    P.REMOVE_OVERRIDE: """DELETE FROM override WHERE schedule = :schedule AND id = :id
        RETURNING id""",
    P.POLICIES_NAMING: """SELECT DISTINCT policy FROM policy_target
        WHERE kind = :kind AND name = :name ORDER BY policy""",
    P.REMOVE_SCHEDULE: "DELETE FROM schedule WHERE name = :name RETURNING name",
    P.UPSERT_POLICY: """INSERT INTO escalation_policy (name, added_at) VALUES (:name, :now)
        ON CONFLICT (name) DO NOTHING""",
    P.CLEAR_POLICY: "DELETE FROM policy_target WHERE policy = :name",
    P.CLEAR_PRIORITIES: "DELETE FROM policy_priority WHERE policy = :name",
    P.PRIORITY_OWNER: "SELECT policy FROM policy_priority WHERE priority = :priority",
    P.ADD_POLICY_PRIORITY: """INSERT INTO policy_priority (priority, policy)
        VALUES (:priority, :name)""",
    P.ADD_POLICY_TARGET: """INSERT INTO policy_target (policy, step, after_share, position,
            kind, name)
        VALUES (:name, :step, :share, :position, :kind, :person)""",
    P.REMOVE_POLICY: "DELETE FROM escalation_policy WHERE name = :name RETURNING name",
    P.POLICIES: "SELECT name FROM escalation_policy ORDER BY name",
    P.POLICY_PRIORITIES: "SELECT priority, policy FROM policy_priority ORDER BY priority",
    P.POLICY_TARGETS: """SELECT policy, step, after_share, kind, name FROM policy_target
        ORDER BY policy, step, position""",
}

SQLITE: dict[str, str] = dict(_COMMON)

POSTGRES: dict[str, str] = {
    **_COMMON,
    # asyncpg wants the types of parameters it cannot infer from a column.
    P.ADD_POLICY_TARGET: """INSERT INTO policy_target (policy, step, after_share, position,
            kind, name)
        VALUES (:name, :step, :share::float8, :position, :kind, :person)""",
}
