//! What the kernel's verifier makes of each XDP program of an object: every program loaded
//! once more, with the verifier's statistics log, which a plain load does not return.
//!
//! aya asks for the verifier's log only when a load fails, so this loads the programs
//! itself: aya creates the maps, `aya-obj` relocates the object against them as aya does,
//! and each program goes to `BPF_PROG_LOAD` with `BPF_LOG_STATS`. The programs are closed
//! again at once; nothing is attached.

use std::{
    collections::HashSet,
    ffi::CString,
    os::fd::{AsFd as _, AsRawFd as _, OwnedFd, RawFd},
    time::Duration,
};

use anyhow::{Context as _, bail};
use aya::{EbpfLoader, maps::Map};
use aya_obj::{Object, btf::BtfFeatures};

use crate::bpf_sys::{BPF_BTF_LOAD, BPF_PROG_LOAD, BPF_PROG_TYPE_XDP, ProgLoad, bpf};

/// The verifier's account of one program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub program: String,
    /// What the kernel said, when it refused the program.
    pub refused: Option<String>,
    /// Instructions processed: what the verifier's limit of a million counts.
    pub instructions: u64,
    /// States the verifier kept along the way, and the most at once.
    pub states: u64,
    pub peak_states: u64,
    pub time: Duration,
    /// Stack depth of each function of the program, as the verifier lists them.
    pub stack: String,
}

/// The verdict on every XDP program of the ELF object `object`, by program name.
pub fn verify(object: &[u8]) -> anyhow::Result<Vec<Verdict>> {
    // aya creates the maps the programs refer to; its programs are never loaded.
    let ebpf = EbpfLoader::new()
        .load(object)
        .context("creating the object's maps")?;
    let mut obj = Object::parse(object).context("parsing the object")?;
    // The kernel's BTF is new enough for everything the object's BTF uses.
    let features = BtfFeatures::new(true, true, true, true, true, true, true, true);
    let btf = obj
        .fixup_and_sanitize_btf(&features)
        .context("preparing the object's BTF")?
        .context("the object has no BTF")?
        .to_bytes();
    let btf = load_btf(&btf)?;
    let fds: Vec<(String, RawFd)> = obj
        .maps
        .keys()
        .map(|name| Ok((name.clone(), map_fd(&ebpf, name)?)))
        .collect::<anyhow::Result<_>>()?;
    let maps: Vec<_> = fds
        .iter()
        .map(|(name, fd)| (name.clone(), *fd, obj.maps[name].clone()))
        .collect();
    let text: HashSet<usize> = obj.functions.keys().map(|(section, _)| *section).collect();
    obj.relocate_maps(maps.iter().map(|(n, fd, m)| (n.as_str(), *fd, m)), &text)
        .context("relocating map references")?;
    obj.relocate_calls(&text).context("relocating calls")?;
    let mut verdicts = Vec::new();
    let mut names: Vec<&String> = obj.programs.keys().collect();
    names.sort();
    for name in names {
        let program = &obj.programs[name];
        let function = &obj.functions[&program.function_key()];
        verdicts.push(load_program(name, function, &btf)?);
    }
    Ok(verdicts)
}

/// The verdicts as a table, one program a line, headed by the kernel they were taken on.
pub fn table(verdicts: &[Verdict]) -> String {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "?".into(), |r| r.trim().to_string());
    let mut out = format!(
        "verifier on kernel {release}\n{:<14} {:>8} {:>7} {:>6} {:>10}  stack\n",
        "program", "insns", "states", "peak", "time"
    );
    for v in verdicts {
        out += &format!(
            "{:<14} {:>8} {:>7} {:>6} {:>10.1?}  {}{}\n",
            v.program,
            v.instructions,
            v.states,
            v.peak_states,
            v.time,
            v.stack,
            v.refused
                .as_ref()
                .map_or_else(String::new, |why| format!("  REFUSED: {why}")),
        );
    }
    out
}

fn map_fd(ebpf: &aya::Ebpf, name: &str) -> anyhow::Result<RawFd> {
    let map = ebpf.map(name).with_context(|| format!("map {name}"))?;
    let data = match map {
        Map::Array(d)
        | Map::HashMap(d)
        | Map::LruHashMap(d)
        | Map::PerCpuArray(d)
        | Map::PerCpuHashMap(d)
        | Map::ProgramArray(d)
        | Map::RingBuf(d) => d,
        _ => bail!("map {name} is of a type this measurement does not know"),
    };
    Ok(data.fd().as_fd().as_raw_fd())
}

/// `BPF_BTF_LOAD`'s attributes.
#[repr(C)]
#[derive(Default)]
struct BtfLoad {
    btf: u64,
    log_buf: u64,
    btf_size: u32,
    log_size: u32,
    log_level: u32,
    _rest: [u32; 9],
}

const BPF_LOG_STATS: u32 = 4;
/// Room for the statistics, and for the end of the log when a program is refused.
const LOG_SIZE: usize = 1 << 20;

fn load_btf(btf: &[u8]) -> anyhow::Result<OwnedFd> {
    let attr = BtfLoad {
        btf: btf.as_ptr() as u64,
        btf_size: btf.len() as u32,
        ..BtfLoad::default()
    };
    bpf(BPF_BTF_LOAD, &attr).context("loading the object's BTF")
}

fn load_program(
    name: &str,
    function: &aya_obj::Function,
    btf: &OwnedFd,
) -> anyhow::Result<Verdict> {
    let license = CString::new("GPL").expect("no NUL");
    let mut log = vec![0u8; LOG_SIZE];
    let func_info = function.func_info.func_info_bytes();
    let line_info = function.line_info.line_info_bytes();
    let attr = ProgLoad {
        prog_type: BPF_PROG_TYPE_XDP,
        insn_cnt: function.instructions.len() as u32,
        insns: function.instructions.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: BPF_LOG_STATS,
        log_size: log.len() as u32,
        log_buf: log.as_mut_ptr() as u64,
        prog_btf_fd: btf.as_raw_fd() as u32,
        func_info_rec_size: function.func_info_rec_size as u32,
        func_info: func_info.as_ptr() as u64,
        func_info_cnt: function.func_info.func_info.len() as u32,
        line_info_rec_size: function.line_info_rec_size as u32,
        line_info: line_info.as_ptr() as u64,
        line_info_cnt: function.line_info.line_info.len() as u32,
        ..ProgLoad::default()
    };
    let refused = bpf(BPF_PROG_LOAD, &attr).err().map(|err| err.to_string());
    let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
    let log = String::from_utf8_lossy(&log[..end]);
    let mut verdict = parse_stats(name, &log)?;
    if let Some(err) = refused {
        let tail: Vec<&str> = log.lines().rev().take(4).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        verdict.refused = Some(format!("{err}: {}", tail.join(" / ")));
    }
    Ok(verdict)
}

/// Reads the statistics the verifier ends its log with:
///
/// ```text
/// verification time 5139 usec
/// stack depth 208+40+224+0+96+216
/// processed 7778 insns (limit 1000000) max_states_per_insn 6 total_states 357 peak_states 375 mark_read 0
/// ```
fn parse_stats(program: &str, log: &str) -> anyhow::Result<Verdict> {
    let after = |line: &str, key: &str| -> Option<u64> {
        let mut words = line.split_whitespace();
        words.find(|w| *w == key)?;
        words.next()?.parse().ok()
    };
    let mut verdict = Verdict {
        program: program.to_string(),
        refused: None,
        instructions: 0,
        states: 0,
        peak_states: 0,
        time: Duration::ZERO,
        stack: String::new(),
    };
    let mut seen = false;
    for line in log.lines() {
        if let Some(us) = line
            .strip_prefix("verification time ")
            .and_then(|rest| rest.strip_suffix(" usec"))
            .and_then(|us| us.parse().ok())
        {
            verdict.time = Duration::from_micros(us);
        } else if let Some(stack) = line.strip_prefix("stack depth ") {
            verdict.stack = stack.trim().to_string();
        } else if line.starts_with("processed ") {
            verdict.instructions = after(line, "processed").unwrap_or_default();
            verdict.states = after(line, "total_states").unwrap_or_default();
            verdict.peak_states = after(line, "peak_states").unwrap_or_default();
            seen = true;
        }
    }
    if !seen {
        bail!("the verifier's log for {program} has no statistics: {log}");
    }
    Ok(verdict)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_statistics_lines() {
        let log = "func#0 @0\nverification time 5139 usec\nstack depth 208+40\n\
                   processed 7778 insns (limit 1000000) max_states_per_insn 6 total_states \
                   357 peak_states 375 mark_read 0\n";
        let verdict = parse_stats("xlb", log).unwrap();
        assert_eq!(verdict.instructions, 7778);
        assert_eq!(verdict.states, 357);
        assert_eq!(verdict.peak_states, 375);
        assert_eq!(verdict.time, Duration::from_micros(5139));
        assert_eq!(verdict.stack, "208+40");
    }

    #[test]
    fn a_log_without_statistics_is_an_error() {
        assert!(parse_stats("xlb", "0: R1=ctx()\n").is_err());
    }
}
