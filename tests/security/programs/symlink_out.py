# Symlinks that point out of the working directory, followed from inside.
import os, sys
os.symlink(sys.argv[1], "marker")
os.symlink("/etc/hostname", "out.txt")
try:
    print("marker READ", open("marker").read())
except OSError as e:
    print("marker denied", type(e).__name__)
