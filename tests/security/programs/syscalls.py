# ptrace, mount, unshare, setns, sethostname, bpf, kexec: each must fail with EPERM.
import ctypes, errno, os, socket
libc = ctypes.CDLL(None, use_errno=True)
def report(name, rc):
    print(name, "ALLOWED" if rc == 0 else errno.errorcode.get(ctypes.get_errno(), "?"))
report("ptrace", libc.ptrace(0, 0, None, None))  # PTRACE_TRACEME
report("mount", libc.mount(b"none", b"/tmp", b"tmpfs", 0, None))
report("unshare", libc.unshare(0x10000000))  # CLONE_NEWUSER
report("unshare_net", libc.unshare(0x40000000))  # CLONE_NEWNET
fd = os.open("/proc/self/ns/net", os.O_RDONLY)
report("setns", libc.setns(fd, 0))
report("sethostname", libc.sethostname(b"evil", 4))
report("bpf", libc.syscall(321, 0, None, 0))
report("kexec_load", libc.syscall(246, 0, 0, None, 0))
try:
    socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    print("packet_socket ALLOWED")
except OSError as e:
    print("packet_socket", errno.errorcode.get(e.errno, "?"))
print("hostname", socket.gethostname())
