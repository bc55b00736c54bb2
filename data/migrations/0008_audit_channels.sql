-- A Discord channel per guild that mirrors the audit log as it is written (optional).
-- Guild-wide, unlike channel_bindings (per server): actions such as /perms grant name no server.

CREATE TABLE audit_channels (
    guild_id   INTEGER PRIMARY KEY,
    channel_id INTEGER NOT NULL
);
