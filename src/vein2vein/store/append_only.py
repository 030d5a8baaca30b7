"""The statements that make a table append-only (written once, never changed or removed),
for the migrations to run: on PostgreSQL triggers calling ``table_is_append_only()``
(created by revision 0002) before UPDATE, DELETE and TRUNCATE; on SQLite triggers that
abort an UPDATE or a DELETE. Written once here so every migration says the same."""

from __future__ import annotations

__all__ = ["append_only_statements"]


def append_only_statements(table: str, dialect: str) -> list[str]:
    """The DDL that makes ``table`` append-only on ``dialect`` (``postgresql`` or
    ``sqlite``)."""
    if dialect == "postgresql":
        return [
            f"CREATE TRIGGER {table}_no_update_delete BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION table_is_append_only()",
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION table_is_append_only()",
        ]
    return [
        f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {operation} refused'); END"
        for operation in ("UPDATE", "DELETE")
    ]
