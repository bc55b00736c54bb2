#!/bin/sh
# A launcher as operators write them (LinuxGSM's and the Pterodactyl eggs' start scripts end
# the same way): set things up, then `exec` the server so it keeps this pid.
cd "$(dirname "$0")/.." || exit 1
exec ./game_server.py "$@"
