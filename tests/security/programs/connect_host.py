# Connects to a TCP listener the host opened on 127.0.0.1 (port in argv).
import socket, sys
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
    print("CONNECTED")
except OSError as e:
    print("refused", type(e).__name__)
