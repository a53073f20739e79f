//! Placeholder for the verifier budget tests: it says which kernel the tests run on and, when
//! `XLB_EXPECT_KERNEL` names one (the Debian 12 tier of `cargo xtask test` sets `6.1`),
//! checks that it is that kernel, so the tier is known to run where it claims.

#[test]
fn runs_on_the_expected_kernel() {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .expect("read the kernel release (uname -r)");
    let release = release.trim();
    println!("kernel release (uname -r): {release}");
    if let Ok(expected) = std::env::var("XLB_EXPECT_KERNEL") {
        // 6.1 is 6.1.0-41-amd64, not 6.12.
        let is_expected = release
            .strip_prefix(expected.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '-']));
        assert!(
            is_expected,
            "running on kernel {release}, expected {expected}"
        );
    }
}
