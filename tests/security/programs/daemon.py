# Double fork and setsid: a daemon that tries to outlive the run.
import os
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv("/bin/sleep", ["sleep", "31337"])
    os._exit(0)
print("parent leaves")
