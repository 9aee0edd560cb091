//! The guest image `make test-lava` hands to LAVA (scripts/test-lava.sh runs this with
//! `--ignored`): the Debian kernel and an initramfs built from the VFIO guest test's
//! pieces (tests/guest: busybox, this build of nicqual with its libraries, the vfio stack
//! and e1000e), plus virtio-blk and ext4 for LAVA's test overlay disk, and an /init
//! (lava_guest/init.sh) that links that disk under /dev/disk/by-uuid and gives LAVA a shell.
//! Writes `vmlinuz` and `initramfs.cpio` to `NICQUAL_LAVA_GUEST_DIR`.

mod guest;

use guest::{VFIO_MODULES, guest_kernel, initramfs};
use std::path::PathBuf;

/// What LAVA's overlay disk needs: virtio-blk (the device configuration's
/// `guestfs_interface = 'virtio'`) and the ext4 driver, which mounts LAVA's ext2 image (and
/// needs a crc32c implementation to mount anything).
const OVERLAY_MODULES: &[(&str, &str)] = &[
    ("virtio_ring", "drivers/virtio/virtio_ring.ko"),
    ("virtio", "drivers/virtio/virtio.ko"),
    ("virtio_pci_legacy_dev", "drivers/virtio/virtio_pci_legacy_dev.ko"),
    ("virtio_pci_modern_dev", "drivers/virtio/virtio_pci_modern_dev.ko"),
    ("virtio_pci", "drivers/virtio/virtio_pci.ko"),
    ("virtio_blk", "drivers/block/virtio_blk.ko"),
    ("crc16", "lib/crc16.ko"),
    ("crc32c_generic", "crypto/crc32c_generic.ko"),
    ("mbcache", "fs/mbcache.ko"),
    ("jbd2", "fs/jbd2/jbd2.ko"),
    ("ext4", "fs/ext4/ext4.ko"),
];

/// The names /init loads, in its order (lava_guest/init.sh).
fn init_loads() -> Vec<String> {
    let init = include_str!("lava_guest/init.sh");
    let start = init.find("for m in ").map(|i| i + "for m in ".len()).unwrap_or_default();
    let end = init.get(start..).and_then(|s| s.find("; do")).map(|e| start + e).unwrap_or(start);
    init.get(start..end).unwrap_or_default().split_whitespace().filter(|w| *w != "\\").map(str::to_string).collect()
}

#[test]
#[ignore = "writes the LAVA guest image to NICQUAL_LAVA_GUEST_DIR: run by `make test-lava`"]
fn lava_guest_image() {
    let dir = PathBuf::from(
        std::env::var("NICQUAL_LAVA_GUEST_DIR").expect("NICQUAL_LAVA_GUEST_DIR: the directory to write the image to"),
    );
    let (kernel, modules) = guest_kernel();
    let nicqual = PathBuf::from(env!("CARGO_BIN_EXE_nicqual"));
    let all: Vec<(&str, &str)> = VFIO_MODULES.iter().chain(OVERLAY_MODULES).copied().collect();
    let image = initramfs(include_bytes!("lava_guest/init.sh"), &nicqual, &modules, &all);
    std::fs::create_dir_all(&dir).expect("create NICQUAL_LAVA_GUEST_DIR");
    std::fs::write(dir.join("initramfs.cpio"), &image).expect("write initramfs.cpio");
    std::fs::copy(&kernel, dir.join("vmlinuz")).expect("copy the guest kernel");
    eprintln!("lava guest: {} ({} MiB initramfs) in {}", kernel.display(), image.len() >> 20, dir.display());
}

/// /init loads exactly the modules the image carries, in the image's order (a module
/// added to one list and not the other would fail in the guest, a minute into the run).
#[test]
fn init_loads_what_the_image_carries() {
    let carried: Vec<String> = VFIO_MODULES.iter().chain(OVERLAY_MODULES).map(|(m, _)| m.to_string()).collect();
    assert_eq!(init_loads(), carried);
}
