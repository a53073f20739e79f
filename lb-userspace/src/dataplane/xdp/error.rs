//! What can go wrong with the XDP data plane.

use aya::programs::ProgramError;
use thiserror::Error;

use super::Mode;
use crate::config::ServiceKey;

#[derive(Debug, Error)]
pub enum XdpError {
    #[error("cannot load the XDP object")]
    Load(#[from] aya::EbpfError),
    #[error("XDP program")]
    Program(#[from] ProgramError),
    #[error("cannot attach to {interface} in {mode:?} mode")]
    Attach {
        interface: String,
        mode: Mode,
        #[source]
        source: ProgramError,
    },
    #[error("map {map}")]
    Map {
        map: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
    #[error("the object has no {0}")]
    Missing(&'static str),
    #[error("the object has no XDP program {0}")]
    MissingProgram(String),
    #[error(
        "the kernel refused the XDP program {program}; its verifier ended with:\n  \
         {verifier}"
    )]
    Refused {
        program: String,
        verifier: String,
        source: std::io::Error,
    },
    #[error("no room for more {what}: the data plane holds at most {capacity}")]
    Full { what: &'static str, capacity: u32 },
    #[error("{service}: {reason}")]
    Unsupported { service: ServiceKey, reason: String },
    #[error("XDP link {path}")]
    Link {
        path: String,
        #[source]
        source: aya::programs::links::LinkError,
    },
    #[error("cannot pin the XDP link at {path}")]
    Pin {
        path: String,
        #[source]
        source: aya::pin::PinError,
    },
    #[error("cannot remove the pinned XDP link {path}")]
    Unpin {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the data plane's pins in {dir}")]
    Pins {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error("enabling forwarding on {interface}")]
    Forwarding {
        interface: String,
        #[source]
        source: std::io::Error,
    },
}
