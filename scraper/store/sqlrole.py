"""The read-only PostgreSQL role ``reviews sql`` runs statements as.

``READ_ONLY_ROLE`` (``SQL_READ_ONLY_ROLE`` in the settings) is a NOLOGIN role with no
attribute and no membership, created on first use, that is granted ``SELECT`` on
the tables and views of the archive's schemas and nothing else, so it cannot
write, run programs, read or write server files, or signal backends, even when
the connection itself is a superuser's. It is one role for the whole cluster,
shared by every archive on it: creating and granting tolerate another process
doing the same at the same moment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scraper.config import SQL_READ_ONLY_ROLE
from scraper.errors import StoreError

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = ["READ_ONLY_ROLE", "prepare_role"]

READ_ONLY_ROLE = SQL_READ_ONLY_ROLE

#: Role memberships that let a plain (non-superuser) role write files, run programs
#: or signal other backends: with one of them and no read-only role, we refuse.
_POWERFUL_ROLES = (
    "pg_execute_server_program",
    "pg_write_server_files",
    "pg_read_server_files",
    "pg_signal_backend",
)


def prepare_role(raw: Any, cursor: Any, engine: Engine) -> str | None:
    """Make sure the read-only role exists, may read the archive and may be taken on.

    Returns its name, or None when the connecting role is a plain one that cannot
    create it (then the statement runs as that role). Raises StoreError when the
    role is unusable and the connecting role could do harm.
    """
    from psycopg import errors

    cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    row = cursor.fetchone()
    superuser = bool(row and row[0])
    usable = True
    for attempt in range(3):
        try:
            _setup_role(cursor, superuser)
            raw.commit()
            break
        except (errors.DuplicateObject, errors.UniqueViolation, errors.InternalError_):
            # Another process created or granted at the same moment ("tuple
            # concurrently updated"): look again.
            raw.rollback()
            if attempt == 2:
                raise
        except errors.InsufficientPrivilege:
            raw.rollback()
            usable = False
            break
    if usable:
        return READ_ONLY_ROLE
    if superuser:
        raise StoreError(f"database {engine.url.database}: cannot set up role {READ_ONLY_ROLE}")
    cursor.execute(
        "SELECT r FROM unnest(%s::text[]) AS r WHERE pg_has_role(current_user, r, 'USAGE')",
        (list(_POWERFUL_ROLES),),
    )
    powers = [name for (name,) in cursor.fetchall()]
    raw.rollback()
    if powers:
        raise StoreError(
            f"reviews sql: this database role has {', '.join(powers)} and cannot create "
            f"the read-only role {READ_ONLY_ROLE}: ask an administrator to run "
            "`reviews sql` once as a superuser, or connect as a plainer role"
        )
    return None


def _setup_role(cursor: Any, superuser: bool) -> None:
    from psycopg import sql as pgsql

    role = pgsql.Identifier(READ_ONLY_ROLE)
    cursor.execute(
        "SELECT oid, rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication "
        "OR rolbypassrls OR rolcanlogin FROM pg_roles WHERE rolname = %s",
        (READ_ONLY_ROLE,),
    )
    found = cursor.fetchone()
    if found is None:
        cursor.execute(pgsql.SQL("CREATE ROLE {} NOLOGIN NOINHERIT").format(role))
    else:
        cursor.execute("SELECT count(*) FROM pg_auth_members WHERE member = %s", (found[0],))
        (memberships,) = cursor.fetchone()
        if found[1] or memberships:
            raise StoreError(
                f"role {READ_ONLY_ROLE} exists with more rights than reading (login, "
                "superuser or memberships): reviews sql will not run as it; drop it "
                "and the next reviews sql creates it again"
            )
    # Every table and view of the archive's schemas the role cannot read yet, that
    # we may grant (a table someone else owns stays unreadable: its name is given
    # by PostgreSQL's own "permission denied" then).
    cursor.execute(
        "SELECT n.nspname, c.relname, has_schema_privilege(%s, n.oid, 'USAGE') "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = ANY(current_schemas(false)) AND c.relkind IN ('r','v','m','p') "
        "AND NOT has_table_privilege(%s, c.oid, 'SELECT') "
        "AND (%s OR pg_has_role(current_user, c.relowner, 'USAGE'))",
        (READ_ONLY_ROLE, READ_ONLY_ROLE, superuser),
    )
    missing = cursor.fetchall()
    for schema in sorted({nsp for nsp, _, usage in missing if not usage}):
        cursor.execute(
            pgsql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(pgsql.Identifier(schema), role)
        )
    for schema, table, _ in missing:
        cursor.execute(
            pgsql.SQL("GRANT SELECT ON {}.{} TO {}").format(
                pgsql.Identifier(schema), pgsql.Identifier(table), role
            )
        )
    if not superuser:
        cursor.execute("SELECT pg_has_role(current_user, %s, 'MEMBER')", (READ_ONLY_ROLE,))
        if not cursor.fetchone()[0]:
            cursor.execute(pgsql.SQL("GRANT {} TO CURRENT_USER").format(role))
