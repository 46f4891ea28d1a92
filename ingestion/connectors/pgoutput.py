"""The messages of PostgreSQL's built-in `pgoutput` logical decoding plugin, protocol version 1, decoded.

`pg_logical_slot_peek_binary_changes(slot, NULL, NULL, 'proto_version', '1', 'publication_names', pub)` gives
one `bytea` per message, in the format of PostgreSQL's "Logical Replication Message Formats" (chapter 55.9):
a one-byte tag, then big-endian integers, NUL-terminated strings and TupleData. Per transaction: Begin,
Relation (before the first change of a table in a session, and again after its shape changed), Insert / Update /
Delete / Truncate, Commit. Origin and Type messages may appear and carry nothing a change needs.

TupleData holds per column either null (`n`), an unchanged TOASTed value that was not sent (`u`), or the value
in its text form (`t`, the server's output function in the decoding session's settings: with TimeZone UTC,
timestamps with a zone come as `2026-01-02 08:30:00+00`). Binary values (`b`) come only with the `binary`
option, which the platform does not ask for.

Pure functions on bytes; no connection, no type knowledge (pg_cdc turns text into values).
"""

from __future__ import annotations

import datetime as dt
import struct
from dataclasses import dataclass

# Microseconds since 2000-01-01 (PostgreSQL's epoch) in Begin and Commit.
PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)

NULL, UNCHANGED_TOAST = "n", "u"


class PgOutputError(ValueError):
    """A message that is not what protocol version 1 of pgoutput sends."""


@dataclass(frozen=True)
class Column:
    name: str
    type_oid: int
    type_modifier: int
    key: bool  # part of the replica identity (flag 1)


@dataclass(frozen=True)
class Relation:
    oid: int
    namespace: str
    name: str
    replica_identity: str  # d (default: primary key), n (nothing), f (full), i (index)
    columns: tuple[Column, ...]


# A tuple's values: per column None (null), UNCHANGED_TOAST (not sent), or its text form as bytes.
Values = tuple[bytes | str | None, ...]


@dataclass(frozen=True)
class Begin:
    final_lsn: int  # LSN of the transaction's commit record
    committed_at: dt.datetime
    xid: int


@dataclass(frozen=True)
class Commit:
    commit_lsn: int
    end_lsn: int  # the end of the commit record: where a slot advances to once the transaction is consumed
    committed_at: dt.datetime


@dataclass(frozen=True)
class Insert:
    relation_oid: int
    new: Values


@dataclass(frozen=True)
class Update:
    relation_oid: int
    old: Values | None  # the replica identity's old values (K: key columns only, O: the whole old row), if sent
    old_kind: str | None  # "K", "O" or None
    new: Values


@dataclass(frozen=True)
class Delete:
    relation_oid: int
    old: Values
    old_kind: str  # "K" (key columns only, the others null) or "O" (the whole row: REPLICA IDENTITY FULL)


@dataclass(frozen=True)
class Truncate:
    relation_oids: tuple[int, ...]
    options: int  # 1: CASCADE, 2: RESTART IDENTITY


@dataclass(frozen=True)
class Other:
    """Origin, Type and logical decoding messages: nothing a table's change needs."""

    tag: str


Message = Begin | Commit | Relation | Insert | Update | Delete | Truncate | Other


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, size: int) -> bytes:
        if self.at + size > len(self.data):
            raise PgOutputError(f"message ends after {len(self.data)} bytes, {self.at + size} needed")
        chunk = self.data[self.at:self.at + size]
        self.at += size
        return chunk

    def int8(self) -> int:
        return int(self.take(1)[0])

    def int16(self) -> int:
        return int(struct.unpack("!h", self.take(2))[0])

    def int32(self) -> int:
        return int(struct.unpack("!i", self.take(4))[0])

    def uint32(self) -> int:
        return int(struct.unpack("!I", self.take(4))[0])

    def int64(self) -> int:
        return int(struct.unpack("!q", self.take(8))[0])

    def uint64(self) -> int:
        return int(struct.unpack("!Q", self.take(8))[0])

    def string(self) -> str:
        end = self.data.find(b"\0", self.at)
        if end < 0:
            raise PgOutputError("a string without its terminating NUL")
        text = self.data[self.at:end].decode("utf-8")
        self.at = end + 1
        return text

    def char(self) -> str:
        return chr(self.int8())

    def timestamp(self) -> dt.datetime:
        return PG_EPOCH + dt.timedelta(microseconds=self.int64())

    def tuple_data(self) -> Values:
        values: list[bytes | str | None] = []
        for _ in range(self.int16()):
            kind = self.char()
            if kind == "n":
                values.append(None)
            elif kind == "u":
                values.append(UNCHANGED_TOAST)
            elif kind in ("t", "b"):
                if kind == "b":
                    raise PgOutputError("a value in binary form; the platform reads pgoutput's text form only")
                values.append(self.take(self.int32()))
            else:
                raise PgOutputError(f"unknown TupleData kind {kind!r}")
        return tuple(values)


def decode(data: bytes) -> Message:
    """One pgoutput message (protocol version 1, text values)."""
    if not data:
        raise PgOutputError("an empty message")
    r = _Reader(bytes(data))
    tag = r.char()
    if tag == "B":
        return Begin(final_lsn=r.uint64(), committed_at=r.timestamp(), xid=r.uint32())
    if tag == "C":
        r.int8()  # flags, unused
        return Commit(commit_lsn=r.uint64(), end_lsn=r.uint64(), committed_at=r.timestamp())
    if tag == "R":
        oid, namespace, name, identity = r.uint32(), r.string(), r.string(), r.char()
        columns = []
        for _ in range(r.int16()):
            flags = r.int8()
            columns.append(Column(name=r.string(), type_oid=r.uint32(), type_modifier=r.int32(), key=bool(flags & 1)))
        return Relation(oid, namespace or "pg_catalog", name, identity, tuple(columns))
    if tag == "I":
        oid = r.uint32()
        if (kind := r.char()) != "N":
            raise PgOutputError(f"an Insert whose tuple is tagged {kind!r}, not 'N'")
        return Insert(oid, r.tuple_data())
    if tag == "U":
        oid = r.uint32()
        kind = r.char()
        old = old_kind = None
        if kind in ("K", "O"):
            old, old_kind = r.tuple_data(), kind
            kind = r.char()
        if kind != "N":
            raise PgOutputError(f"an Update whose new tuple is tagged {kind!r}, not 'N'")
        return Update(oid, old, old_kind, r.tuple_data())
    if tag == "D":
        oid = r.uint32()
        kind = r.char()
        if kind not in ("K", "O"):
            raise PgOutputError(f"a Delete whose old tuple is tagged {kind!r}, not 'K' or 'O'")
        return Delete(oid, r.tuple_data(), kind)
    if tag == "T":
        count, options = r.int32(), r.int8()
        return Truncate(tuple(r.uint32() for _ in range(count)), options)
    if tag in ("O", "Y", "M"):
        return Other(tag)
    raise PgOutputError(f"unknown message tag {tag!r} (protocol version 1 has B, C, R, I, U, D, T, O, Y, M)")


def lsn_text(lsn: int) -> str:
    """An LSN as PostgreSQL writes a pg_lsn: `16/B374D848`."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def lsn_number(text: str) -> int:
    """A pg_lsn's text (`16/B374D848`) as its number; ValueError for anything else."""
    high, sep, low = text.strip().partition("/")
    if not sep or not high or not low:
        raise ValueError(f"{text!r} is not an LSN (written as 16/B374D848)")
    return (int(high, 16) << 32) | int(low, 16)
