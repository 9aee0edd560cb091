//! A xenstore-like key/value store: the feature-negotiation channel between a front end
//! and its back end. Paths follow the vif protocol:
//! front end `/local/domain/<domU>/device/vif/<n>`, back end
//! `/local/domain/<dom0>/backend/vif/<domU>/<n>`.

use nicqual_hw::xen_netif::DomId;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XenStore {
    kv: BTreeMap<String, String>,
    writes: u64,
}

/// Front-end directory of vif `n` of `dom`.
pub fn frontend_dir(dom: DomId, n: u32) -> String {
    format!("/local/domain/{dom}/device/vif/{n}")
}

/// Back-end directory (in `backend`) of vif `n` of `dom`.
pub fn backend_dir(backend: DomId, dom: DomId, n: u32) -> String {
    format!("/local/domain/{backend}/backend/vif/{dom}/{n}")
}

impl XenStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn read(&self, path: &str) -> Option<&str> {
        self.kv.get(path).map(String::as_str)
    }

    /// Read a key as an integer (absent or malformed = None, as `xenbus_scanf` failing).
    pub fn read_u32(&self, path: &str) -> Option<u32> {
        self.read(path)?.trim().parse().ok()
    }

    pub fn write(&mut self, path: &str, value: impl ToString) {
        self.writes += 1;
        self.kv.insert(path.to_string(), value.to_string());
    }

    pub fn remove(&mut self, path: &str) {
        self.kv.remove(path);
    }

    /// Remove every key under `dir`.
    pub fn remove_dir(&mut self, dir: &str) {
        let prefix = format!("{dir}/");
        self.kv.retain(|k, _| k != dir && !k.starts_with(&prefix));
    }

    /// Keys under `dir` with their values (for reports).
    pub fn list(&self, dir: &str) -> Vec<(String, String)> {
        let prefix = format!("{dir}/");
        self.kv.iter().filter_map(|(k, v)| k.strip_prefix(&prefix).map(|rest| (rest.to_string(), v.clone()))).collect()
    }

    pub fn writes(&self) -> u64 {
        self.writes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_scoped_by_directory() {
        let mut s = XenStore::new();
        let fe = frontend_dir(5, 0);
        s.write(&format!("{fe}/request-rx-copy"), 1);
        s.write(&format!("{fe}/rx-ring-ref"), "12");
        s.write(&format!("{}/feature-rx-copy", backend_dir(0, 5, 0)), 1);
        assert_eq!(s.read_u32(&format!("{fe}/rx-ring-ref")), Some(12));
        assert_eq!(s.list(&fe).len(), 2);
        s.remove_dir(&fe);
        assert!(s.list(&fe).is_empty());
        assert_eq!(s.list(&backend_dir(0, 5, 0)), vec![("feature-rx-copy".to_string(), "1".to_string())]);
    }
}
