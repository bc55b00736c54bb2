-- A process is identified by pid + start time since boot + the boot id: a reboot restarts
-- the clock and the pid numbers, so nothing recorded under another boot is ever adopted.
ALTER TABLE servers ADD COLUMN boot_id TEXT;
