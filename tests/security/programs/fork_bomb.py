# Forks forever, ignoring failures: the pids limit holds it, the timeout ends it.
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
