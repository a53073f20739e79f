//! xlb's decapsulation program for LVS-TUN real servers (`xlb realserver --mode tun`).
//!
//! It stays attached after `xlb realserver` exits: its link is pinned on the BPF file
//! system, and removing the pin detaches it.

use std::{net::IpAddr, path::Path};

use aya::{
    Ebpf,
    maps::{HashMap, MapData},
    programs::{
        Xdp,
        links::{FdLink, PinnedLink},
    },
};
use lb_common::{
    Addr, Family,
    maps::{DecapKey, name},
};

use super::{
    Mode, TestRunOutcome, XdpError,
    load::{self, LoadReport},
    test_run,
};

/// The decapsulation object, built from `lb-ebpf` by this crate's build script.
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/decap.o"));
const PROGRAM: &str = "decap";

/// The program, loaded, with the VIPs it unwraps packets for.
pub struct Decap {
    ebpf: Ebpf,
    vips: HashMap<MapData, DecapKey, u8>,
}

impl Decap {
    /// Loads the program, and says what the verifier made of it.
    pub fn load() -> Result<(Self, LoadReport), XdpError> {
        let mut ebpf = Ebpf::load(OBJECT)?;
        let report = load::programs(&mut ebpf, &[PROGRAM])?;
        let map = ebpf
            .take_map(name::DECAP_VIPS)
            .ok_or(XdpError::Missing(name::DECAP_VIPS))?;
        let vips = HashMap::try_from(map).map_err(|source| XdpError::Map {
            map: name::DECAP_VIPS,
            source,
        })?;
        Ok((Self { ebpf, vips }, report))
    }

    /// Unwraps tunnelled packets whose inner destination is `vip`.
    pub fn add_vip(&mut self, vip: IpAddr) -> Result<(), XdpError> {
        let key = DecapKey {
            addr: Addr::from(vip),
            family: Family::of(&vip) as u8,
            _pad: [0; 3],
        };
        self.vips.insert(key, 1, 0).map_err(|source| XdpError::Map {
            map: name::DECAP_VIPS,
            source,
        })
    }

    /// Attaches to `interface` and pins the attachment at `pin`, where it outlives this
    /// process until [`detach_pinned`] removes it.
    pub fn attach_pinned(
        &mut self,
        interface: &str,
        mode: Mode,
        pin: &Path,
    ) -> Result<(), XdpError> {
        let program = program_mut(&mut self.ebpf)?;
        let attach_error = |source| XdpError::Attach {
            interface: interface.to_string(),
            mode,
            source,
        };
        let id = program
            .attach(interface, mode.into())
            .map_err(attach_error)?;
        let link = FdLink::try_from(program.take_link(id)?).map_err(|source| XdpError::Link {
            path: pin.display().to_string(),
            source,
        })?;
        link.pin(pin).map_err(|source| XdpError::Pin {
            path: pin.display().to_string(),
            source,
        })?;
        Ok(())
    }

    /// Runs the program on `frame` through the kernel's test-run.
    pub fn test_run(&self, frame: &[u8]) -> Result<TestRunOutcome, XdpError> {
        let program: &Xdp = self
            .ebpf
            .program(PROGRAM)
            .ok_or(XdpError::Missing("decap program"))?
            .try_into()?;
        test_run::run(program, frame, None, 1)
    }
}

/// Detaches the program pinned at `pin` by [`Decap::attach_pinned`].
pub fn detach_pinned(pin: &Path) -> Result<(), XdpError> {
    let link = PinnedLink::from_pin(pin).map_err(|source| XdpError::Link {
        path: pin.display().to_string(),
        source,
    })?;
    link.unpin().map_err(|source| XdpError::Unpin {
        path: pin.display().to_string(),
        source,
    })?;
    Ok(())
}

fn program_mut(ebpf: &mut Ebpf) -> Result<&mut Xdp, XdpError> {
    Ok(ebpf
        .program_mut(PROGRAM)
        .ok_or(XdpError::Missing("decap program"))?
        .try_into()?)
}
