//! Cross-crate test support for nicqual. Integration tests live in tests/; the
//! differential conformance cases (our 82574L model against QEMU's e1000e) live here so
//! that `nicqual conformance` runs the very same cases.

pub mod conformance;
pub mod igb;

use nicqual_backends::emulated::EmulatedBackend;
use nicqual_backends::qtest::{QemuConfig, QtestBackend, Target};
use nicqual_model::i82574::{Config, I82574 as Model};
use nicqual_pci::Backend;

/// A fresh emulated 82574L (our model), power-on state.
pub fn fresh_model() -> Result<Box<dyn Backend>, String> {
    Ok(Box::new(EmulatedBackend::new(Model::new(Config::default()), "model:i82574l")))
}

/// A fresh QEMU e1000e over qtest, power-on state (QEMU is killed when it is dropped).
pub fn fresh_qemu() -> Result<Box<dyn Backend>, String> {
    fresh_qemu_with(QemuConfig::default())
}

/// A fresh QEMU 11.1 e1000e (Debian forky root, `-accel qtest`, virtual time).
pub fn fresh_qemu11() -> Result<Box<dyn Backend>, String> {
    fresh_qemu_with(QemuConfig::qemu11())
}

fn fresh_qemu_with(cfg: QemuConfig) -> Result<Box<dyn Backend>, String> {
    QtestBackend::spawn(Target::Qemu(cfg)).map(|b| Box::new(b) as Box<dyn Backend>).map_err(|e| e.to_string())
}
