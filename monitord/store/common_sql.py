"""The incident rules' statements that read the same in SQLite and PostgreSQL, once.

Each dialect's table is ``{**COMMON, **its own}``: ``sqlite_dialect`` and
``postgres_dialect`` keep only what really differs between the two (placeholders' casts,
booleans, upserts' column references, ``FOR UPDATE``, time and JSON functions). A
statement moves here only when its text is the same in both, and a statement here is in
neither dialect's own table (``tests/central/test_store_dialects.py`` holds both). The
on-call statements keep their own shared table in ``people_sql``.
"""

from __future__ import annotations

from monitord.store.ops import Statement as S

# Pieces the dialects' own statements share: an incident's opening (its reopening, if
# it was reopened), a notice's columns, and the fix statistics' grouping, busiest first.
OPENED = "coalesce(i.reopened_at, i.opened_at)"
NOTICE_COLUMNS = "id, incident_id, kind, level, created_at, attempts, done"
FIX_STEPS = """SELECT host, check_name, fix, count(*) AS runs, sum(worked) AS worked,
            max(at) AS last_at
        FROM fix_step"""
BUSIEST_FIRST = """GROUP BY host, check_name, fix
        ORDER BY runs DESC, last_at DESC, host, check_name, fix LIMIT :limit"""

COMMON: dict[str, str] = {
    S.NOTE_HOST: "INSERT INTO host (host) VALUES (:host) ON CONFLICT (host) DO NOTHING",
    S.LOG_FIX_RUN: """INSERT INTO fix_step (at, host, check_name, fix, worked)
        VALUES (:at, :host, :check, :fix, :worked)""",
    S.CLEAR_ATTACHED: "UPDATE attached SET priority = NULL WHERE incident_id = :id",
    S.ATTACH: """INSERT INTO attached (incident_id, key, priority) VALUES (:id, :key, :priority)
        ON CONFLICT (incident_id, key) DO UPDATE SET priority = excluded.priority""",
    S.START_PERIOD: """INSERT INTO open_period (incident_id, started_at, priority, due_at)
        VALUES (:id, :now, :priority, :due_at)""",
    S.ACK_PERIOD: """UPDATE open_period SET acknowledged_at = coalesce(acknowledged_at, :now),
            acknowledged_by = coalesce(acknowledged_by, :who)
        WHERE incident_id = :id AND resolved_at IS NULL""",
    S.END_PERIOD: """UPDATE open_period SET resolved_at = :now, resolved_by = :who
        WHERE incident_id = :id AND resolved_at IS NULL""",
    S.PERIODS_BETWEEN: """SELECT p.incident_id, i.key, i.host, i.check_name, i.title,
            p.priority, p.started_at, p.due_at, p.acknowledged_at, p.acknowledged_by,
            p.resolved_at, p.resolved_by
        FROM open_period p JOIN incident i ON i.id = p.incident_id
        WHERE p.started_at >= :since AND p.started_at < :until ORDER BY p.started_at, p.id""",
    S.MAINTENANCE: """SELECT host, check_name, until, owner, reason, set_at, source
        FROM maintenance WHERE until > :now ORDER BY host, check_name, source""",
    # said: the incident's timeline already says, since the window was set, that it
    # kept people from hearing of it.
    S.SILENCED_BY: """SELECT m.host, m.check_name, m.until, m.owner, m.reason,
            EXISTS (SELECT 1 FROM timeline t WHERE t.incident_id = i.id
                    AND t.kind = 'silenced' AND t.at >= m.set_at) AS said
        FROM maintenance m JOIN incident i ON m.host = i.host
            AND m.check_name IN ('', i.check_name)
        WHERE i.id = :id AND m.until > :now ORDER BY m.check_name LIMIT 1""",
    S.FORGET_FIX_RUNS: "DELETE FROM fix_step WHERE at < :before",
    S.FORGET_HEARTBEATS: """DELETE FROM event
        WHERE kind = 'heartbeat' AND received_at < :before""",
    S.TIMELINE: """SELECT at, kind, who, text, event_id, steps FROM timeline
        WHERE incident_id = :id ORDER BY id""",
    S.HEALED_COUNTS: """SELECT host, check_name, fix, count FROM healed
        ORDER BY host, check_name, fix""",
    S.FIX_RUNS: """SELECT host, check_name, fix, runs, worked FROM fix_run
        ORDER BY host, check_name, fix""",
    S.FIX_STATS: """SELECT host, check_name, fix, count(*) AS runs, sum(worked) AS worked,
            max(at) AS last_at
        FROM fix_step WHERE at >= :since
        GROUP BY host, check_name, fix ORDER BY host, check_name, fix""",
    S.OPEN_COUNTS: """SELECT priority, status, count(*) AS count FROM incident
        WHERE status <> 'resolved' GROUP BY priority, status""",
    S.SET_PASSWORD: """INSERT INTO person (name, password_hash, added_at)
        VALUES (:name, :hash, :now)
        ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash""",
    S.PASSWORD_HASH: "SELECT password_hash FROM person WHERE name = :name",
    S.SESSION_GENERATION: "SELECT session_generation FROM person WHERE name = :name",
    S.END_SESSIONS: """UPDATE person SET session_generation = session_generation + 1
        WHERE name = :name""",
    S.SET_PERSON_TOKEN: """INSERT INTO person (name, token_hash, added_at)
        VALUES (:name, :hash, :now)
        ON CONFLICT (name) DO UPDATE SET token_hash = excluded.token_hash""",
    S.PERSON_FOR: "SELECT name FROM person WHERE token_hash = :hash",
    S.ADD_AGENT: """INSERT INTO agent (host, token_hash, added_at)
        VALUES (:host, :token_hash, :now)
        ON CONFLICT (host) DO UPDATE SET token_hash = excluded.token_hash,
            added_at = excluded.added_at""",
    S.AGENT_FOR: "SELECT host FROM agent WHERE token_hash = :token_hash",
    S.OFFER_SECRET: """INSERT INTO secret (name, value) VALUES (:name, :value)
        ON CONFLICT (name) DO NOTHING""",
    S.SECRET: "SELECT value FROM secret WHERE name = :name",
    S.HOST_COUNT: "SELECT count(*) AS count FROM host",
    S.ADD_SCRAPER: """INSERT INTO scraper (name, token_hash, added_at)
        VALUES (:name, :token_hash, :now)
        ON CONFLICT (name) DO UPDATE SET token_hash = excluded.token_hash,
            added_at = excluded.added_at""",
    S.SCRAPER_FOR: "SELECT name FROM scraper WHERE token_hash = :token_hash",
}
