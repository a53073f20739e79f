//! `cargo xtask test`: the one command that says whether xlb works.

use std::ffi::OsString;

use anyhow::{Context, bail};

use crate::{build, cmd, setup};

/// Tallies of libtest's `test result:` lines across every test binary.
#[derive(Default, Debug, PartialEq)]
struct Tally {
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl Tally {
    /// Adds `line` if it is a libtest summary such as
    /// `test result: ok. 5 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; ...`.
    fn add(&mut self, line: &str) {
        let Some(rest) = line.strip_prefix("test result: ") else {
            return;
        };
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(what), Some(count)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(count) = count.parse::<u64>() else {
                continue;
            };
            match what {
                "passed" => self.passed += count,
                "failed" => self.failed += count,
                "ignored" => self.ignored += count,
                _ => {}
            }
        }
    }
}

pub fn run(cargo_test_args: &[OsString]) -> anyhow::Result<()> {
    setup::run().context("setup")?;
    let built = build::userspace().context("build")?;
    for object in &built.objects {
        println!("xtask: XDP object {}", object.display());
    }
    // The end-to-end tests run the workspace's binaries (`xlb`, `xlb-http-real`).
    cmd::run(cmd::cargo().args(["build", "--bins"])).context("build")?;
    if !xlb_testbed::is_root() {
        println!("xtask: WARNING: not root; tests in network namespaces will be skipped");
    }

    let mut cargo = cmd::cargo();
    cargo.args(["test", "--no-fail-fast"]).args(cargo_test_args);
    let mut tally = Tally::default();
    let status = cmd::run_with_stdout(&mut cargo, |line| {
        println!("{line}");
        tally.add(line);
    })?;

    let Tally {
        passed,
        failed,
        ignored,
    } = tally;
    // Worded as the plain `N passed, N failed` closing line that CI reads.
    println!("tests: {passed} passed, {failed} failed, {ignored} skipped");
    if !status.success() {
        bail!("tests failed ({status})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_adds_libtest_summaries_and_ignores_other_lines() {
        let mut tally = Tally::default();
        for line in [
            "test result: ok. 5 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; \
             finished in 0.01s",
            "running 3 tests",
            "test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out",
        ] {
            tally.add(line);
        }
        let expected = Tally {
            passed: 7,
            failed: 1,
            ignored: 1,
        };
        assert_eq!(tally, expected);
    }
}
