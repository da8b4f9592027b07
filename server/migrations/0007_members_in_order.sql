-- A room's members in the order they joined, which is how every member list is read: a
-- contract 000 join lists the whole room, so without this each join sorted every member.
CREATE INDEX memberships_in_order ON memberships (room_id, joined_at, user_id);
