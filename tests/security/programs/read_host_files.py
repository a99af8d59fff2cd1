# Tries the host's secrets: shadow, the home directory marker (path in argv), SSH keys.
import os, sys
for path in ["/etc/shadow", sys.argv[1], "/root/.ssh/id_rsa", "/home"]:
    try:
        if os.path.isdir(path):
            print(path, "LISTED", os.listdir(path))
        else:
            print(path, "READ", open(path).read()[:100])
    except OSError as e:
        print(path, "denied", type(e).__name__)
