//! keepalived.conf: reading it into the typed [`Config`] every subsystem works from.
//!
//! Reading happens in layers: [`lexer`] turns text into words and braces, [`tree`] into
//! statements and blocks, and the block readers ([`read`]) into the model, each
//! reporting problems with the file, line and column they come from.

pub mod diag;
pub mod host;
mod lexer;
pub mod model;
mod read;
mod source;
mod tree;
mod validate;
mod value;

use std::path::{Path, PathBuf};

pub use diag::{Diagnostic, Diagnostics, Pos, Severity};
pub use model::*;

/// How to read a configuration, as keepalived's command line sets it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// keepalived's `--config-id`: selects `@ID` lines and is `${_INSTANCE}`. Defaults to
    /// the host name up to its first dot, as keepalived's does.
    pub config_id: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .and_then(|h| h.trim().split('.').next().map(str::to_string))
            .filter(|h| !h.is_empty());
        Self { config_id: host }
    }
}

/// A configuration that has no errors, and the warnings reading it produced.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Diagnostics,
}

/// Reads the configuration at `path` with the default [`Options`]. Fails with every
/// diagnostic, errors and warnings, when there is at least one error.
pub fn load(path: &Path) -> Result<Loaded, Diagnostics> {
    load_with(path, &Options::default())
}

pub fn load_with(path: &Path, opts: &Options) -> Result<Loaded, Diagnostics> {
    let mut diags = Diagnostics::default();
    let source = source::read_file(path, opts, &mut diags);
    finish(source, diags)
}

/// Reads configuration text as if it came from a file named `name` (includes are
/// relative to its directory).
pub fn parse_str(name: impl Into<PathBuf>, text: &str) -> Result<Loaded, Diagnostics> {
    parse_str_with(name, text, &Options::default())
}

pub fn parse_str_with(
    name: impl Into<PathBuf>,
    text: &str,
    opts: &Options,
) -> Result<Loaded, Diagnostics> {
    let mut diags = Diagnostics::default();
    let source = source::read_text(name.into(), text, opts, &mut diags);
    finish(source, diags)
}

fn finish(source: source::Source, mut diags: Diagnostics) -> Result<Loaded, Diagnostics> {
    let nodes = tree::parse(source.lines, &mut diags);
    let config = read::config(&nodes, &mut diags);
    validate::config(&config, &mut diags);
    diags.sort_by_key(|d| {
        let line = source.order.get(&(d.pos.file.clone(), d.pos.line));
        (line.copied().unwrap_or(usize::MAX), d.pos.col)
    });
    if diags.has_errors() {
        Err(diags)
    } else {
        Ok(Loaded {
            config,
            warnings: diags,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const DR: &str = "
virtual_server 203.0.113.10 80 {
    delay_loop 2
    lb_algo wrr
    lb_kind DR
    protocol TCP
    real_server 192.0.2.11 80 {
        weight 3
        TCP_CHECK {
            connect_timeout 1
            retry 0
        }
    }
    real_server 192.0.2.12 8080 {
        weight 0
    }
}
";

    #[test]
    fn reads_a_dr_service() {
        let loaded = parse_str("t.conf", DR).unwrap();
        assert!(loaded.warnings.is_empty(), "{}", loaded.warnings);
        let [vs] = loaded.config.virtual_servers.as_slice() else {
            panic!("one service")
        };
        assert_eq!(
            vs.target,
            ServiceTarget::Addr("203.0.113.10:80".parse().unwrap())
        );
        assert_eq!(vs.scheduler, Scheduler::Wrr);
        assert_eq!(vs.method, ForwardMethod::Dr);
        assert_eq!(vs.delay_loop, Duration::from_secs(2));
        assert_eq!(vs.real_servers.len(), 2);
        assert_eq!(vs.real_servers[0].weight.get(), 3);
        assert_eq!(vs.real_servers[1].weight.get(), 0);
        let Check::Tcp(check) = &vs.real_servers[0].checks[0] else {
            panic!("a TCP check")
        };
        assert_eq!(check.timing.connect_timeout, Duration::from_secs(1));
        assert_eq!(check.timing.retry, 0);
        assert_eq!(check.timing.delay_before_retry, Duration::from_secs(1));
    }

    #[test]
    fn every_error_is_reported_with_its_position() {
        let text = "virtual_server 203.0.113.10 80 {\n  lb_algo nope\n  real_server 192.0.2.1 x {\n  }\n  weight 1 2\n}\n";
        let diags = parse_str("t.conf", text).unwrap_err();
        assert_eq!(
            diags.to_string(),
            "t.conf:2:11: error: unknown lb_algo 'nope'\n\
             t.conf:3:25: error: 'x' is not an integer\n\
             t.conf:5:3: error: 'weight' takes 1 argument\n"
        );
    }

    #[test]
    fn old_spellings_warn() {
        let text = "virtual_server 203.0.113.10 80 {\n real_server 192.0.2.1 80 {\n  TCP_CHECK {\n   nb_get_retry 3\n  }\n }\n}\n";
        let loaded = parse_str("t.conf", text).unwrap();
        assert_eq!(
            loaded.warnings.to_string(),
            "t.conf:4:4: warning: 'nb_get_retry' is the old name of 'retry'\n"
        );
    }
}
