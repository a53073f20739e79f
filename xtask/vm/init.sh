#!/bin/busybox sh
# PID 1 of the VM that `cargo xtask vm` boots (xtask/src/vm/): it assembles the guest's root
# from the host's, runs one command in it, reports how it ended and powers the VM off.
#
# From the host (9p mount tags):
#   ctl       this boot's control directory: `config` (shell assignments: share, modules,
#             cwd), `command` (the script to run) and `status`, which only this init writes:
#             "running", then "exit N", or "setup-failed: WHY".
#   hostroot  the host's /, read-only; it becomes the guest's / under a tmpfs overlay, so
#             the guest can write anywhere and nothing reaches the host.
#   share     the workspace, read-write, mounted at its host path.
# The command's stdout and stderr are the serial ports ttyS1 and ttyS2; ttyS0 is the console,
# which xtask prints when something goes wrong.

/bin/busybox --install -s /bin
export PATH=/bin

say() { echo "xlb-vm: $*"; }
off() {
    sync
    poweroff -f
}
# Once the control directory is mounted, failures are reported through it.
fail() {
    say "set-up failed: $*"
    echo "setup-failed: $*" >/ctl/status
    off
}
need() { "$@" || fail "$*"; }

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# Numbered by xtask in dependency order.
for module in /modules/*.ko; do
    insmod "$module" || { say "insmod $module failed"; off; }
done

p9=trans=virtio,version=9p2000.L,msize=512000
mkdir /ctl
mount -t 9p -o "$p9,cache=none" ctl /ctl || { say "cannot mount the control directory"; off; }
. /ctl/config || fail "cannot read /ctl/config"

mkdir /lower /layer /newroot
need mount -t 9p -o "$p9,ro,cache=loose" hostroot /lower
need mount -t tmpfs -o mode=755 tmpfs /layer
mkdir /layer/upper /layer/work
need mount -t overlay -o lowerdir=/lower,upperdir=/layer/upper,workdir=/layer/work \
    overlay /newroot

root=/newroot
need mount -t proc proc $root/proc
need mount -t sysfs sysfs $root/sys
need mount -t bpf bpf $root/sys/fs/bpf
need mount -t devtmpfs devtmpfs $root/dev
mkdir -p $root/dev/pts $root/dev/shm
need mount -t devpts -o newinstance,ptmxmode=0666 devpts $root/dev/pts
need mount -t tmpfs tmpfs $root/dev/shm
# The guest's own, as on a booted machine: the host's would show other processes' files.
need mount -t tmpfs -o mode=755 tmpfs $root/run
need mount -t tmpfs -o mode=1777 tmpfs $root/tmp
mkdir -p $root/run/xlb-vm $root/lib/modules
need mount --bind /ctl $root/run/xlb-vm
need mount --bind "/lower$modules" $root/lib/modules
# cache=mmap: binaries built on the host are executed (mapped) straight from the share.
need mount -t 9p -o "$p9,cache=mmap" share "$root$share"
[ -d "$root$cwd" ] || fail "the working directory $cwd is not in the guest"

# The kernel runs its module loader (for `ip link add type veth` and the like) in PID 1's
# root, this initramfs; send it to the host's modprobe in the guest's root.
cat >/bin/modprobe-in-root <<EOF
#!/bin/sh
exec chroot $root /sbin/modprobe "\$@"
EOF
chmod 755 /bin/modprobe-in-root
echo /bin/modprobe-in-root >/proc/sys/kernel/modprobe

hostname xlb-vm
need ip link set lo up
# Bytes as the command wrote them, without the terminal's newline translation or echo.
need stty -F /dev/ttyS1 raw -echo
need stty -F /dev/ttyS2 raw -echo

say "running the command after $(cut -d' ' -f1 /proc/uptime) s"
echo running >/ctl/status
env -i chroot $root /bin/sh /run/xlb-vm/command </dev/null >/dev/ttyS1 2>/dev/ttyS2
echo "exit $?" >/ctl/status
say "the command ended after $(cut -d' ' -f1 /proc/uptime) s"
off
