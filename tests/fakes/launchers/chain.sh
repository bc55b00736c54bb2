#!/usr/bin/env sh
# Two levels: `env` execs sh, this script execs wrapper.sh, which execs the game through its
# own `#!/usr/bin/env python3` line (and, with pyenv, a shim that execs the interpreter).
exec "$(dirname "$0")/wrapper.sh" "$@"
