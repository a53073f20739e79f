//! The trivial programs of `lb-ebpf`'s baseline object: what benchmarks measure the
//! balancer against, and what test topologies attach to veth peers.

use aya::{Ebpf, programs::Xdp};

use super::{Mode, TestRunOutcome, XdpError, test_run};

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/baseline.o"));

/// Both baseline programs, loaded.
pub struct Baseline {
    ebpf: Ebpf,
}

impl Baseline {
    pub fn load() -> Result<Self, XdpError> {
        let mut ebpf = Ebpf::load(OBJECT)?;
        for name in ["tx", "pass"] {
            program_mut(&mut ebpf, name)?.load()?;
        }
        Ok(Self { ebpf })
    }

    /// Attaches the program that passes everything to `interface` (in the calling thread's
    /// network namespace) until `self` is dropped. On veth this is what makes the interface
    /// poll for frames its peer sends with XDP_TX.
    pub fn attach_pass(&mut self, interface: &str) -> Result<(), XdpError> {
        program_mut(&mut self.ebpf, "pass")?
            .attach(interface, Mode::Native.into())
            .map_err(|source| XdpError::Attach {
                interface: interface.to_string(),
                mode: Mode::Native,
                source,
            })?;
        Ok(())
    }

    /// Runs the program that bounces every frame back, as [`super::XdpDataPlane::test_run`].
    pub fn test_run_tx(&self, frame: &[u8], repeat: u32) -> Result<TestRunOutcome, XdpError> {
        let program: &Xdp = self
            .ebpf
            .program("tx")
            .ok_or(XdpError::Missing("tx program"))?
            .try_into()?;
        test_run(program, frame, None, repeat)
    }
}

fn program_mut<'a>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut Xdp, XdpError> {
    Ok(ebpf
        .program_mut(name)
        .ok_or(XdpError::Missing(name))?
        .try_into()?)
}
