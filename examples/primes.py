# The first primes, the sandbox's hello world.
import numpy as np

sieve = np.ones(100, dtype=bool)
sieve[:2] = False
for i in range(2, 10):
    if sieve[i]:
        sieve[i * i :: i] = False
print("primes below 100:", np.flatnonzero(sieve).tolist())
