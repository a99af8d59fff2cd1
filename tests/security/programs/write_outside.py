# Tries to write outside the working directory.
import sys
for path in ["/usr/wand-pwned", "/etc/wand-pwned", "/wand-pwned", "../wand-pwned", "/proc/wand-pwned",
             sys.argv[1]]:
    try:
        with open(path, "w") as f:
            f.write("pwned")
        print(path, "WRITTEN")
    except OSError as e:
        print(path, "denied", type(e).__name__)
