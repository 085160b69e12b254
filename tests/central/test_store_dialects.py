"""The two dialects' SQL tables: the same statement names, and each statement that reads
the same in both written once, in monitord/store/common_sql.py."""

from __future__ import annotations

from monitord.store import common_sql, people_sql, postgres_dialect, sqlite_dialect
from monitord.store.ops import STATEMENTS


def same_text(sql: str | None) -> str | None:
    """``sql`` with its whitespace normalised (indentation and line breaks say nothing)."""
    return None if sql is None else " ".join(sql.split())


def test_both_dialects_answer_exactly_the_statements_the_rules_name() -> None:
    assert sqlite_dialect.SQL.keys() == STATEMENTS
    assert postgres_dialect.SQL.keys() == STATEMENTS


def test_each_dialect_own_table_names_what_the_shared_tables_do_not() -> None:
    shared = common_sql.COMMON.keys() | people_sql.PEOPLE_STATEMENTS
    own = STATEMENTS - shared
    assert sqlite_dialect.OWN.keys() == own
    assert postgres_dialect.OWN.keys() == own


def test_no_statement_of_a_dialect_own_table_reads_as_the_other_dialects() -> None:
    alike = sorted(name for name in sqlite_dialect.OWN
                   if same_text(sqlite_dialect.OWN[name]) == same_text(postgres_dialect.OWN[name]))
    assert alike == [], "move these to common_sql.COMMON"


def test_the_shared_statements_are_what_both_dialects_run() -> None:
    for name, text in common_sql.COMMON.items():
        assert postgres_dialect.SQL[name] == postgres_dialect.query(text)
        bound = sqlite_dialect.SQL[name]
        assert bound is not None and bound.sql == sqlite_dialect.Bound(text).sql
