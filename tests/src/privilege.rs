//! Namespace tests need root; without it they skip loudly instead of failing obscurely.

use std::io::Write;

/// Whether this process may create namespaces, links and XDP attachments.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Tells the person running the tests that the current test (in module `module`) did not run.
///
/// Written straight to the process's stderr, past the test harness's output capture, so the
/// skip is visible even though the test reports `ok`.
pub fn note_skip(module: &str, why: &str) {
    // libtest names each test's thread after the test.
    let current = std::thread::current();
    let test = current.name().unwrap_or("<unnamed test>");
    let _ = writeln!(std::io::stderr(), "SKIPPED {module}::{test}: {why}");
}

/// Returns from the calling test (with the given value, `()` by default) unless running as
/// root, after saying so on stderr.
#[macro_export]
macro_rules! require_root {
    () => {
        $crate::require_root!(())
    };
    ($skipped:expr) => {
        if !$crate::is_root() {
            $crate::note_skip(
                module_path!(),
                "needs root for network namespaces (CI runs as root)",
            );
            return $skipped;
        }
    };
}
