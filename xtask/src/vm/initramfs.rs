//! The VM's initramfs: a static busybox, the guest init script, and the few modules the init
//! needs before it can reach the host's root over 9p.
//!
//! It is a few megabytes built in memory for each boot (in well under a second), so it always
//! matches this xtask's init script and the kernel it boots, whichever worktree runs it.

use std::{collections::HashSet, fs, path::Path};

use anyhow::{Context, bail};

use super::kernel::Kernel;

/// PID 1 of the guest.
const INIT: &str = include_str!("../../vm/init.sh");
/// Installed by `busybox-static`: it must run before any library can be found.
const BUSYBOX: &str = "/bin/busybox";
/// What mounting the host's directories takes (the PCI transport of virtio, 9p over
/// virtio, overlayfs); `modules.dep` adds what they depend on.
const MODULES: &[&str] = &["virtio_pci", "9pnet_virtio", "9p", "overlay"];

/// The initramfs for booting `kernel`, as a `newc` cpio archive (uncompressed: the kernel
/// then has nothing to decompress under emulation).
pub fn build(kernel: &Kernel) -> anyhow::Result<Vec<u8>> {
    let module_dir = kernel.modules.join(&kernel.release);
    let dep_file = module_dir.join("modules.dep");
    let deps =
        fs::read_to_string(&dep_file).with_context(|| format!("read {}", dep_file.display()))?;
    let builtin = fs::read_to_string(module_dir.join("modules.builtin")).unwrap_or_default();

    let mut cpio = Cpio::default();
    for dir in ["bin", "dev", "proc", "sys", "modules"] {
        cpio.dir(dir);
    }
    // The kernel opens it as init's stdin, stdout and stderr, before any devtmpfs exists.
    cpio.char_device("dev/console", 0o600, (5, 1));
    cpio.file("init", 0o755, INIT.as_bytes());
    let busybox =
        fs::read(BUSYBOX).with_context(|| format!("read {BUSYBOX} (package busybox-static)"))?;
    cpio.file("bin/busybox", 0o755, &busybox);
    // Numbered so that the init's `/modules/*.ko` loads them in dependency order.
    for (i, module) in load_order(&deps, &builtin, MODULES)?.iter().enumerate() {
        let data =
            fs::read(module_dir.join(module)).with_context(|| format!("read module {module}"))?;
        let name = Path::new(module)
            .file_name()
            .and_then(|name| name.to_str())
            .with_context(|| format!("module path {module}"))?;
        cpio.file(&format!("modules/{i:02}-{name}"), 0o644, &data);
    }
    Ok(cpio.finish())
}

/// The module files (relative to the release's module directory) to load for `wanted`,
/// each after the ones it needs, each once; built-in modules need nothing.
fn load_order(deps: &str, builtin: &str, wanted: &[&str]) -> anyhow::Result<Vec<String>> {
    let module_name = |path: &str| {
        let file = path.rsplit('/').next().unwrap_or(path);
        let name = file.split(".ko").next().unwrap_or(file);
        // Module names treat '-' and '_' alike.
        name.replace('-', "_")
    };
    let builtin: HashSet<String> = builtin.lines().map(module_name).collect();
    let mut order: Vec<String> = Vec::new();
    for want in wanted {
        if builtin.contains(*want) {
            continue;
        }
        let Some((path, needs)) = deps.lines().find_map(|line| {
            let (path, needs) = line.split_once(':')?;
            (module_name(path) == *want).then_some((path, needs))
        }) else {
            bail!("module {want} is neither in modules.dep nor built in");
        };
        // modules.dep lists what a module needs from the closest dependency outwards;
        // modprobe loads them from the far end.
        let mut needs: Vec<&str> = needs.split_whitespace().collect();
        needs.reverse();
        for file in needs.into_iter().chain([path]) {
            if !order.iter().any(|known| known == file) {
                order.push(file.to_owned());
            }
        }
    }
    Ok(order)
}

/// A `newc` cpio archive (the format the kernel unpacks into its initial root).
#[derive(Default)]
struct Cpio {
    bytes: Vec<u8>,
    next_inode: u32,
}

const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFCHR: u32 = 0o020_000;

impl Cpio {
    fn dir(&mut self, path: &str) {
        self.entry(path, S_IFDIR | 0o755, (0, 0), &[]);
    }

    fn file(&mut self, path: &str, permissions: u32, data: &[u8]) {
        self.entry(path, S_IFREG | permissions, (0, 0), data);
    }

    fn char_device(&mut self, path: &str, permissions: u32, device: (u32, u32)) {
        self.entry(path, S_IFCHR | permissions, device, &[]);
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, (0, 0), &[]);
        self.bytes
    }

    fn entry(&mut self, path: &str, mode: u32, (major, minor): (u32, u32), data: &[u8]) {
        self.next_inode += 1;
        let size = u32::try_from(data.len()).expect("initramfs files are under 4 GiB");
        let name_size = u32::try_from(path.len() + 1).expect("short path");
        let nlink = if mode & S_IFDIR != 0 { 2 } else { 1 };
        // ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor
        // namesize check, each as 8 hex digits.
        let fields = [
            self.next_inode,
            mode,
            0,
            0,
            nlink,
            0,
            size,
            0,
            0,
            major,
            minor,
            name_size,
            0,
        ];
        self.bytes.extend_from_slice(b"070701");
        for field in fields {
            self.bytes
                .extend_from_slice(format!("{field:08X}").as_bytes());
        }
        self.bytes.extend_from_slice(path.as_bytes());
        self.bytes.push(0);
        self.pad();
        self.bytes.extend_from_slice(data);
        self.pad();
    }

    /// Name and data each end on a 4-byte boundary.
    fn pad(&mut self) {
        while !self.bytes.len().is_multiple_of(4) {
            self.bytes.push(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPS: &str = "\
kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/netfs/netfs.ko
kernel/net/9p/9pnet.ko:
kernel/fs/netfs/netfs.ko:
kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/fs/overlayfs/overlay.ko:
";

    #[test]
    fn loads_dependencies_first_and_each_module_once() {
        let builtin = "kernel/drivers/virtio/virtio_pci.ko\n";
        let order = load_order(DEPS, builtin, &["virtio_pci", "9pnet_virtio", "9p"]).unwrap();
        assert_eq!(
            order,
            [
                "kernel/drivers/virtio/virtio_ring.ko",
                "kernel/net/9p/9pnet.ko",
                "kernel/net/9p/9pnet_virtio.ko",
                "kernel/fs/netfs/netfs.ko",
                "kernel/fs/9p/9p.ko",
            ]
        );
    }

    #[test]
    fn a_module_the_kernel_lacks_is_an_error() {
        let err = load_order(DEPS, "", &["virtio_pci"]).unwrap_err();
        assert!(err.to_string().contains("virtio_pci"), "{err}");
    }

    #[test]
    fn cpio_entries_are_newc_and_aligned() {
        let mut cpio = Cpio::default();
        cpio.file("init", 0o755, b"#!/bin/sh\n");
        let bytes = cpio.finish();
        let header = std::str::from_utf8(&bytes[..110]).unwrap();
        assert!(header.starts_with("070701"));
        // mode, then filesize and namesize ("init" and its NUL).
        assert_eq!(&header[14..22], "000081ED");
        assert_eq!(&header[54..62], "0000000A");
        assert_eq!(&header[94..102], "00000005");
        // Header and name take 115 bytes, padded to 116; then 10 bytes of data, to 128.
        assert_eq!(&bytes[110..115], b"init\0");
        assert_eq!(&bytes[116..126], b"#!/bin/sh\n");
        assert_eq!(&bytes[128..134], b"070701");
        // The trailer: a header and its 11-byte name, padded to 124 bytes.
        assert_eq!(bytes.len(), 128 + 124);
        assert!(bytes.ends_with(b"TRAILER!!!\0\0\0\0"));
    }
}
