# Looks for the host's environment.
import os
print(sorted(os.environ))
print("SECRET" if any("wand-secret" in v for v in os.environ.values()) else "clean")
