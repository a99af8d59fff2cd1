# Allocates and touches memory until something stops it.
chunks = []
while True:
    chunks.append(bytearray(16 << 20))
