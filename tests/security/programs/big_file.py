# One file past the file-size limit.
with open("big", "wb") as f:
    for _ in range(1024):
        f.write(b"x" * (1 << 20))
