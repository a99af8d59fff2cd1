# kill(-1, SIGKILL), and SIGKILL to every pid it can see in /proc.
import os, signal
try:
    os.kill(-1, signal.SIGKILL)
except OSError as e:
    print("kill(-1):", type(e).__name__)
for name in os.listdir("/proc"):
    if name.isdigit() and int(name) != os.getpid():
        try:
            os.kill(int(name), signal.SIGKILL)
            print("killed", name)
        except OSError as e:
            pass
print("still here")
