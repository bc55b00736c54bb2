-- Several hosts (hosts.toml): which host a server runs on. `local` is the bot's own machine
-- (processes); every server made before hosts existed runs there.
ALTER TABLE servers ADD COLUMN host TEXT NOT NULL DEFAULT 'local';
