//! Running an XDP program on a frame through the kernel's BPF test-run, for fixtures and
//! benchmarks.

use aya::programs::{TestRun, TestRunOptions, Xdp};

use super::XdpError;

/// The result of [`super::XdpDataPlane::test_run`].
#[derive(Debug)]
pub struct TestRunOutcome {
    /// The XDP action (`XDP_PASS` = 2, `XDP_TX` = 3, ...).
    pub action: u32,
    pub frame: Vec<u8>,
    /// Average time per run, as the kernel measured it.
    pub duration: std::time::Duration,
}

pub fn run(
    program: &Xdp,
    frame: &[u8],
    ingress: Option<u32>,
    repeat: u32,
) -> Result<TestRunOutcome, XdpError> {
    // Room for the frame to grow (encapsulation) without the kernel refusing to copy it out.
    let mut out = vec![0u8; frame.len() + 256];
    let context = ingress.map(|ifindex| xdp_md(frame.len(), ifindex));
    let result = program.test_run(TestRunOptions {
        data_in: Some(frame),
        data_out: Some(&mut out),
        ctx_in: context.as_ref().map(|c| c.as_slice()),
        repeat,
        ..TestRunOptions::default()
    })?;
    out.truncate(result.data_size_out as usize);
    Ok(TestRunOutcome {
        action: result.return_value,
        frame: out,
        duration: result.duration,
    })
}

/// `struct xdp_md` as test-run takes it: the frame spans the whole input (data 0, data_end
/// its length, no metadata) and arrived on `ifindex`, queue 0.
fn xdp_md(frame_len: usize, ifindex: u32) -> [u8; 24] {
    let fields = [0, frame_len as u32, 0, ifindex, 0, 0];
    let mut bytes = [0u8; 24];
    for (chunk, field) in bytes.chunks_exact_mut(4).zip(fields) {
        chunk.copy_from_slice(&field.to_ne_bytes());
    }
    bytes
}
