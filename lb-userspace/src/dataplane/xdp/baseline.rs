//! The trivial program of `lb-ebpf`'s baseline object, which benchmarks measure the
//! balancer against.

use aya::{Ebpf, programs::Xdp};

use super::{TestRunOutcome, XdpError, load, test_run};

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/baseline.o"));
const PROGRAM: &str = "tx";

/// The program that bounces every frame back unchanged, loaded.
pub struct Baseline {
    ebpf: Ebpf,
}

impl Baseline {
    pub fn load() -> Result<Self, XdpError> {
        let mut ebpf = Ebpf::load(OBJECT)?;
        load::programs(&mut ebpf, &[PROGRAM])?;
        Ok(Self { ebpf })
    }

    /// Runs it as [`super::XdpDataPlane::test_run`] runs the balancer.
    pub fn test_run(&self, frame: &[u8], repeat: u32) -> Result<TestRunOutcome, XdpError> {
        let program: &Xdp = self
            .ebpf
            .program(PROGRAM)
            .ok_or(XdpError::Missing("tx program"))?
            .try_into()?;
        test_run::run(program, frame, None, repeat)
    }
}
