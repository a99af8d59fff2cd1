# Writes files until the working directory's tmpfs is full.
i = 0
while True:
    with open(f"fill{i}", "wb") as f:
        f.write(b"x" * (8 << 20))
    i += 1
