//! Loading xlb's XDP programs into the kernel, and what the verifier made of each.

use std::{
    fmt,
    time::{Duration, Instant},
};

use aya::{
    Ebpf,
    programs::{ProgramError, Xdp},
};

use super::XdpError;

/// One program as the kernel accepted it.
#[derive(Clone, Debug)]
pub struct Verified {
    pub program: String,
    /// Instructions the verifier processed (kernels from 5.16 report it): what its limit
    /// of a million counts, and what xlb's budget of a fifth of that is measured by.
    pub instructions: Option<u32>,
    /// The time the load took, verification included.
    pub took: Duration,
}

/// Every program of a load, in the order they were loaded.
#[derive(Clone, Debug, Default)]
pub struct LoadReport {
    pub programs: Vec<Verified>,
}

impl LoadReport {
    /// The time all loads took together.
    pub fn total(&self) -> Duration {
        self.programs.iter().map(|p| p.took).sum()
    }

    /// Instructions the verifier processed over all programs (those that report them).
    pub fn instructions(&self) -> u64 {
        self.programs
            .iter()
            .filter_map(|p| p.instructions)
            .map(u64::from)
            .sum()
    }

    fn extend(&mut self, other: LoadReport) {
        self.programs.extend(other.programs);
    }
}

impl fmt::Display for LoadReport {
    /// One program a line: name, instructions processed, load time.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.programs {
            let instructions = p
                .instructions
                .map_or_else(|| "?".to_string(), |n| n.to_string());
            writeln!(
                f,
                "{:<14} {instructions:>8} insns {:>9.1?}",
                p.program, p.took
            )?;
        }
        Ok(())
    }
}

/// Loads the XDP programs `names` of `ebpf`, in that order.
pub fn programs(ebpf: &mut Ebpf, names: &[&str]) -> Result<LoadReport, XdpError> {
    let mut report = LoadReport::default();
    for name in names {
        report.extend(program(ebpf, name)?);
    }
    Ok(report)
}

fn program(ebpf: &mut Ebpf, name: &str) -> Result<LoadReport, XdpError> {
    let program: &mut Xdp = ebpf
        .program_mut(name)
        .ok_or_else(|| XdpError::MissingProgram(name.to_string()))?
        .try_into()?;
    let started = Instant::now();
    program.load().map_err(|err| refused(name, err))?;
    let took = started.elapsed();
    let instructions = program.info()?.verified_instruction_count();
    Ok(LoadReport {
        programs: vec![Verified {
            program: name.to_string(),
            instructions,
            took,
        }],
    })
}

/// Lines of the verifier's log worth quoting: its last words say why it gave up, and how
/// far it got.
const LOG_TAIL: usize = 6;

/// The error for a program the kernel would not load: the verifier's conclusion rather
/// than its whole log, which runs to thousands of lines.
fn refused(program: &str, err: ProgramError) -> XdpError {
    match err {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            let log = verifier_log.to_string();
            let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
            let tail = lines[lines.len().saturating_sub(LOG_TAIL)..].join("\n  ");
            XdpError::Refused {
                program: program.to_string(),
                verifier: tail,
                source: io_error,
            }
        }
        other => XdpError::Program(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_sums_its_programs() {
        let report = LoadReport {
            programs: vec![
                Verified {
                    program: "xlb".into(),
                    instructions: Some(700),
                    took: Duration::from_millis(3),
                },
                Verified {
                    program: "xlb_ring".into(),
                    instructions: None,
                    took: Duration::from_millis(1),
                },
            ],
        };
        assert_eq!(report.instructions(), 700);
        assert_eq!(report.total(), Duration::from_millis(4));
        let table = report.to_string();
        assert!(table.contains("xlb_ring              ? insns"), "{table}");
    }
}
