-- Languard schema, version 7: where each ban came from, and the lifts a game has yet to see.
--
-- A ban is Languard's own (made through the bot) or was found in a game (in its ban file or
-- ban list, made before the bot, in game, or with another tool) and imported. Either way,
-- once it is in the ledger and lifted there, the game loses it; a game-side ban the ledger
-- never saw is never removed.

ALTER TABLE bans ADD COLUMN origin TEXT NOT NULL DEFAULT 'languard'
    CHECK (origin IN ('languard', 'game'));

-- A ban lifted (removed or expired) in the ledger that a server's game may still hold: the
-- next sync or start of that server takes it out of the game, then the row goes. Only these
-- entries are ever removed from a game.
CREATE TABLE ban_lifts (
    ban_id    INTEGER NOT NULL REFERENCES bans(id) ON DELETE CASCADE,
    server_id INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    PRIMARY KEY (ban_id, server_id)
);
CREATE INDEX ban_lifts_by_server ON ban_lifts(server_id);
