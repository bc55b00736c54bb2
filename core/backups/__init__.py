"""Server backups that restore: what to keep per game (selection), the archive and its
manifest, retention, the backup folders (store), the restore that stages, verifies and
swaps, and `runs`, the two jobs that drive a server around them (pausing Minecraft's saves,
stopping for a cold copy). `core.services.backups` queues those jobs; nothing here knows
about Discord."""
