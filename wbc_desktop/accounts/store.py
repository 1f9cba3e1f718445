"""Accounts kept in the case store's SQLite file (one file to back up): add, list, authenticate."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    user_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS users_no_delete BEFORE DELETE ON users
BEGIN SELECT RAISE(ABORT, 'accounts are never deleted: a signature must keep naming its signer'); END;
CREATE TRIGGER IF NOT EXISTS users_id_fixed BEFORE UPDATE OF user_id ON users
BEGIN SELECT RAISE(ABORT, 'an account ID is never changed or reused'); END;
"""
MIN_PASSWORD = 8
USER_ID = re.compile(r"[A-Za-z0-9._-]{2,32}")
MEANING = "reviewed and released"  # what a sign-out signature means (§11.50(a)(3)); printed with it


class SignatureError(Exception):
    """An account cannot be created, or a signature was not given (wrong ID or password)."""


@dataclass(frozen=True)
class User:
    user_id: str
    name: str

    @property
    def signature(self) -> str:
        """How the signer is named on a record: the printed name with the unique ID."""
        return f"{self.name} ({self.user_id})"


class Accounts:
    def __init__(self, db: sqlite3.Connection):
        self.db = db
        self.hasher = PasswordHasher()  # Argon2id with the library's current parameters
        self.db.executescript(SCHEMA)

    def users(self) -> list[User]:
        return [User(*row) for row in self.db.execute("SELECT user_id, name FROM users ORDER BY name, user_id")]

    def add(self, user_id: str, name: str, password: str) -> User:
        """A new account; refused for a taken or malformed ID, an empty name or a short password."""
        user_id, name = user_id.strip(), " ".join(name.split())
        if not USER_ID.fullmatch(user_id):
            raise SignatureError("the user ID must be 2-32 letters, digits, '.', '_' or '-'")
        if not name:
            raise SignatureError("the account needs the person's full name (it is printed with each signature)")
        if len(password) < MIN_PASSWORD:
            raise SignatureError(f"the password must have at least {MIN_PASSWORD} characters")
        digest = self.hasher.hash(password)
        created = dt.datetime.now().astimezone().isoformat(timespec="seconds")
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute(
                "INSERT INTO users (user_id, name, password_hash, created) VALUES (?, ?, ?, ?)",
                (user_id, name, digest, created),
            )
        except sqlite3.IntegrityError:
            self.db.execute("ROLLBACK")
            raise SignatureError(f"the user ID {user_id!r} is taken (IDs are never reused)") from None
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
        return User(user_id, name)

    def authenticate(self, user_id: str, password: str) -> User:
        """The account, if the password is its own; one message for a wrong ID or password (it says nothing
        about which accounts exist)."""
        row = self.db.execute(
            "SELECT user_id, name, password_hash FROM users WHERE user_id = ?", (user_id.strip(),)
        ).fetchone()
        if row is None:
            self.hasher.hash(password)  # the same time as a real check: timing does not reveal the ID exists
            raise SignatureError("wrong user ID or password")
        try:
            self.hasher.verify(row[2], password)
        except (VerificationError, InvalidHashError):
            raise SignatureError("wrong user ID or password") from None
        if self.hasher.check_needs_rehash(row[2]):
            self.db.execute(
                "UPDATE users SET password_hash = ? WHERE user_id = ?", (self.hasher.hash(password), row[0])
            )
        return User(row[0], row[1])
