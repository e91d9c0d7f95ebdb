"""``sysmon user`` and ``sysmon key``: accounts from the command line.

sysmon user add NAME --role admin|viewer [--password-stdin]
sysmon user passwd NAME [--password-stdin]
sysmon user delete NAME [--force]
sysmon user list
sysmon key create NAME --role admin|viewer     (prints the key once)
sysmon key list
sysmon key revoke ID

These write the authentication database directly (the same file the server workers use;
WAL and ``busy_timeout`` let both work at once), so the first admin can be created before
the server ever starts. Whoever runs them can read that file anyway: they are the local
operator, recorded in the audit log as actor ``cli``. Passwords are read from the terminal
without echo (twice), or as one line from standard input with ``--password-stdin`` (for
scripts: never as an argument, which ``ps`` would show to every user).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sysmon.security.principal import ROLES, parse_role

if TYPE_CHECKING:
    from sysmon.security.accounts import Accounts

# The account modules (SQLAlchemy, argon2, PyJWT: ~15 MiB) are imported when a ``user``
# or ``key`` command runs, not when ``sysmon agent`` or ``sysmon server`` builds its
# argument parser.


class CommandError(Exception):
    """Printed to stderr; the command exits 1."""


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: Sequence[argparse.ArgumentParser] = (),
) -> None:
    user = subparsers.add_parser("user", help="manage dashboard and API users")
    users = user.add_subparsers(dest="user_command", required=True)
    add = users.add_parser("add", help="create a user", parents=parents)
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, required=True)
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.set_defaults(func=_run(_user_add))
    passwd = users.add_parser("passwd", help="set a user's password", parents=parents)
    passwd.add_argument("name")
    passwd.add_argument("--password-stdin", action="store_true", help="read it from stdin")
    passwd.set_defaults(func=_run(_user_passwd))
    delete = users.add_parser("delete", help="delete a user", parents=parents)
    delete.add_argument("name")
    delete.add_argument("--force", action="store_true", help="even the last admin")
    delete.set_defaults(func=_run(_user_delete))
    users.add_parser("list", help="list users", parents=parents).set_defaults(func=_run(_user_list))

    key = subparsers.add_parser("key", help="manage API keys for machine clients")
    keys = key.add_subparsers(dest="key_command", required=True)
    create = keys.add_parser("create", help="create a key (printed once)", parents=parents)
    create.add_argument("name")
    create.add_argument("--role", choices=ROLES, default="viewer")
    create.set_defaults(func=_run(_key_create))
    keys.add_parser("list", help="list keys", parents=parents).set_defaults(func=_run(_key_list))
    revoke = keys.add_parser("revoke", help="revoke a key", parents=parents)
    revoke.add_argument("id", type=int)
    revoke.set_defaults(func=_run(_key_revoke))


Command = Callable[["Accounts", argparse.Namespace], None]


def _run(command: Command) -> Callable[[argparse.Namespace], int]:
    """Open the accounts, run ``command(accounts, args)``, close; errors -> exit 1."""

    def run(args: argparse.Namespace) -> int:
        from sysmon.channel import data_dir
        from sysmon.config import config_path_from_env, load_settings
        from sysmon.security.accounts import Accounts
        from sysmon.security.audit import Auditor
        from sysmon.security.credentials import Credentials
        from sysmon.security.passwords import Passwords
        from sysmon.security.store import AuthStore, LastAdminError, UserExistsError, auth_db_path

        given = getattr(args, "config", None)
        settings = load_settings(Path(given).resolve() if given else config_path_from_env())
        folder = data_dir(settings.database.path)
        store = AuthStore(
            auth_db_path(settings.auth.users_db, folder), url=settings.relational.resolved_url()
        )
        store.open()
        credentials = Credentials(store)
        accounts = Accounts(
            store, credentials, Passwords(), Auditor(store, settings.auth.audit_retention_days)
        )
        try:
            command(accounts, args)
        except (CommandError, UserExistsError, LastAdminError, ValueError) as exc:
            sys.stderr.write(f"error: {exc}\n")
            return 1
        finally:
            store.close()
        return 0

    return run


def _password(args: argparse.Namespace) -> str:
    from sysmon.security.passwords import check_policy

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        check_policy(password)
        return password
    if not sys.stdin.isatty():
        raise CommandError("no terminal to ask for the password: use --password-stdin")
    first = getpass.getpass("Password: ")
    check_policy(first)
    if getpass.getpass("Password (again): ") != first:
        raise CommandError("the passwords differ")
    return first


def _user_add(accounts: Accounts, args: argparse.Namespace) -> None:
    role = parse_role(args.role)
    accounts.create_user(args.name, role, _password(args), by=None, source=None)
    sys.stdout.write(f"user {args.name} added ({role})\n")


def _user_passwd(accounts: Accounts, args: argparse.Namespace) -> None:
    if not any(u.name == args.name for u in accounts.list_users()):
        raise CommandError(f"no user {args.name!r}")
    if not accounts.set_password(args.name, _password(args), by=None, source=None):
        raise CommandError(f"no user {args.name!r}")
    sys.stdout.write(f"password of {args.name} changed; their logins are ended\n")


def _user_delete(accounts: Accounts, args: argparse.Namespace) -> None:
    if not accounts.delete_user(args.name, by=None, source=None, keep_an_admin=not args.force):
        raise CommandError(f"no user {args.name!r}")
    sys.stdout.write(f"user {args.name} deleted\n")


def _user_list(accounts: Accounts, args: argparse.Namespace) -> None:
    rows = [(u.name, u.role, _when(u.created_at)) for u in accounts.list_users()]
    _table(("NAME", "ROLE", "CREATED"), rows)


def _key_create(accounts: Accounts, args: argparse.Namespace) -> None:
    key, secret = accounts.create_key(args.name, parse_role(args.role), by=None, source=None)
    sys.stderr.write(f"key {key.id} ({key.name}, {key.role}); it is shown only now:\n")
    sys.stdout.write(secret + "\n")


def _key_list(accounts: Accounts, args: argparse.Namespace) -> None:
    rows = [
        (str(k.id), k.name, k.role, k.prefix + "...", _when(k.created_at), _when(k.revoked_at))
        for k in accounts.list_keys()
    ]
    _table(("ID", "NAME", "ROLE", "PREFIX", "CREATED", "REVOKED"), rows)


def _key_revoke(accounts: Accounts, args: argparse.Namespace) -> None:
    if accounts.revoke_key(args.id, by=None, source=None) is None:
        raise CommandError(f"no active key {args.id}")
    sys.stdout.write(f"key {args.id} revoked\n")


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        sys.stdout.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        sys.stdout.write("\n")
