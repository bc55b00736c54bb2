"""Game servers in containers, driven through each host's own Docker Engine API (aiodocker).

No agent on the hosts and no `docker` CLI: the bot speaks Engine API 1.41 to a unix socket,
to TCP with mutual TLS, or over SSH, and stays the only scheduler. Facts this package relies
on are in `../shared/reference/docker-engine.md`; comments cite its sections as `[ref §N]`.

Modules: `client` (endpoints and connections), `spec` (container specs and labels),
`containers` (create, start, wait, inspect, list by label, stats), `logstream` (the log
stream with an exactly-once resume cursor), `files` (atomic writes through the archive
endpoint), `console` (stdin through attach), `runtime` (the supervisor's runtime seam).
"""
