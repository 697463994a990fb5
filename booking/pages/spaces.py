"""How a premises relates to the others on its floor, for the pages: what it is part of (the
whole hall for a half), what it consists of (the halves for the whole), and what else shares
some of its floor (two rooms and the large room they make)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from projections.availability import spaces_table
from projections.catalogue import premises_table


@dataclass
class Related:
    part_of: list[Any] = field(default_factory=list)  # catalogue rows
    parts: list[Any] = field(default_factory=list)
    overlapping: list[Any] = field(default_factory=list)

    def relation(self, premises_id: str) -> str:
        """`whole` if that premises contains this one, `part` if it is a part of this one,
        `shared` if they only share some floor ("" if not related)."""
        for name, rows in (("whole", self.part_of), ("part", self.parts)):
            if any(r.id == premises_id for r in rows):
                return name
        return "shared" if any(r.id == premises_id for r in self.overlapping) else ""


def related_premises(conn: Connection, row: Any) -> Related:
    """The premises in use that share a space with `row` (a catalogue row), by relation."""
    mine, theirs = spaces_table.alias("mine"), spaces_table.alias("theirs")
    ids = (
        select(theirs.c.premises_id)
        .join(mine, mine.c.space_id == theirs.c.space_id)
        .where(mine.c.premises_id == row.id, theirs.c.premises_id != row.id)
    )
    t = premises_table
    others = conn.execute(
        select(t).where(t.c.id.in_(ids), t.c.retired.is_(False)).order_by(t.c.id)
    ).all()
    found = Related()
    spaces = set(row.spaces)
    for other in others:
        theirs_ = set(other.spaces)
        if spaces < theirs_:
            found.part_of.append(other)
        elif theirs_ < spaces:
            found.parts.append(other)
        else:
            found.overlapping.append(other)
    return found
