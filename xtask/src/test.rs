//! `cargo xtask test`: the one command that says whether xlb works.
//!
//! The host's test suite first, then the Debian 12 kernel tier: a few integration tests run
//! again in a VM booted with Debian 12's stock kernel (`cargo xtask vm`), where the verifier
//! and the kernel's networking are those users run.

use std::{collections::BTreeMap, ffi::OsString, path::PathBuf};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::{build, cmd, setup, vm};

/// The integration tests (test target, libtest arguments) the Debian 12 kernel tier runs.
const DEBIAN_KERNEL_TIER: &[(&str, &[&str])] = &[
    // Whether every XDP program loads: the verifier is the kernel's.
    ("verifier_budget", &[]),
    // HTTP through the VIP, balanced in XDP by the director, answered by the reals.
    (
        "e2e_dr",
        &["--exact", "rr_spreads_fresh_connections_over_every_real"],
    ),
];
/// Debian 12's kernel line, which the tier's tests may check they run on.
const DEBIAN_KERNEL: &str = "6.1";

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
    let mut failures = Vec::new();
    if !status.success() {
        failures.push(format!("the host's tests ({status})"));
    }

    if cargo_test_args.is_empty() {
        failures.extend(debian_kernel_tier(&mut tally)?);
    } else {
        println!("xtask: Debian 12 kernel tier skipped: cargo test arguments select the tests");
    }

    let Tally {
        passed,
        failed,
        ignored,
    } = tally;
    // Worded as the plain `N passed, N failed` closing line that CI reads.
    println!("tests: {passed} passed, {failed} failed, {ignored} skipped");
    if !failures.is_empty() {
        bail!("failed: {}", failures.join(", "));
    }
    Ok(())
}

/// Runs [`DEBIAN_KERNEL_TIER`] in the VM, one boot per test binary, adding to `tally`;
/// returns what failed.
fn debian_kernel_tier(tally: &mut Tally) -> anyhow::Result<Vec<String>> {
    let release = vm::kernel::Kernel::prepared()?.release;
    println!("xtask: Debian 12 kernel tier, under {release} in QEMU");
    let executables = test_executables()?;
    let machine = vm::Machine::default();
    let mut failures = Vec::new();
    for &(target, args) in DEBIAN_KERNEL_TIER {
        let executable = executables
            .get(target)
            .with_context(|| format!("cargo built no test executable `{target}`"))?;
        let mut command = vec![OsString::from(executable)];
        command.extend(args.iter().map(OsString::from));
        println!("xtask: under {release}: {target} {}", args.join(" "));
        let failed_before = tally.failed;
        let outcome = machine.run(
            &command,
            &[("XLB_EXPECT_KERNEL", DEBIAN_KERNEL)],
            Some(&mut |line: &str| {
                println!("{line}");
                tally.add(line);
            }),
        )?;
        let failed = match outcome {
            vm::Outcome::Exited(0) => None,
            vm::Outcome::Exited(code) => Some(format!("exit code {code}")),
            vm::Outcome::SetupFailed(reason) => Some(format!("guest set-up failed: {reason}")),
            vm::Outcome::Died => Some("the VM died or timed out".to_owned()),
        };
        if let Some(why) = failed {
            failures.push(format!("{target} under {release} ({why})"));
            // A run that ended before libtest could count its failure counts as one.
            if tally.failed == failed_before {
                tally.failed += 1;
            }
        }
    }
    Ok(failures)
}

/// The integration-test executables of the workspace by target name, as the host's run just
/// built them (the same `cargo test` selection, so nothing is rebuilt).
fn test_executables() -> anyhow::Result<BTreeMap<String, PathBuf>> {
    let mut cargo = cmd::cargo();
    cargo.args([
        "test",
        "--no-run",
        "--message-format=json-render-diagnostics",
    ]);
    let mut executables = BTreeMap::new();
    let status = cmd::run_with_stdout(&mut cargo, |line| {
        if let Ok(message) = serde_json::from_str::<Value>(line)
            && let Some((name, executable)) = integration_test(&message)
        {
            executables.insert(name, executable);
        }
    })?;
    if !status.success() {
        bail!("building the tests failed ({status})");
    }
    Ok(executables)
}

/// The target name and executable of a cargo message about a built integration test.
fn integration_test(message: &Value) -> Option<(String, PathBuf)> {
    let target = &message["target"];
    let is_test = message["reason"] == "compiler-artifact"
        && target["kind"]
            .as_array()
            .is_some_and(|kinds| kinds.iter().any(|kind| kind == "test"));
    if !is_test {
        return None;
    }
    let name = target["name"].as_str()?;
    let executable = message["executable"].as_str()?;
    Some((name.to_owned(), executable.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_integration_test_executables_only() {
        let test = serde_json::json!({"reason": "compiler-artifact",
            "target": {"name": "e2e_dr", "kind": ["test"]},
            "executable": "/w/target/debug/deps/e2e_dr-0123"});
        let unit = serde_json::json!({"reason": "compiler-artifact",
            "target": {"name": "xlb", "kind": ["bin"]},
            "executable": "/w/target/debug/deps/xlb-4567"});
        let library = serde_json::json!({"reason": "compiler-artifact",
            "target": {"name": "xlb_testbed", "kind": ["lib"]}, "executable": null});
        assert_eq!(
            integration_test(&test),
            Some(("e2e_dr".into(), "/w/target/debug/deps/e2e_dr-0123".into()))
        );
        assert_eq!(integration_test(&unit), None);
        assert_eq!(integration_test(&library), None);
    }

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
