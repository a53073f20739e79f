//! keepalived.conf: reading it into the typed [`Config`] every subsystem works from.
//!
//! Reading happens in layers: [`lexer`] turns text into words and braces, [`tree`] into
//! statements and blocks, and the block readers ([`read`]) into the model, each
//! reporting problems with the file, line and column they come from.

pub mod diag;
mod lexer;
pub mod model;
mod read;
mod tree;
mod value;

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

pub use diag::{Diagnostic, Diagnostics, Pos, Severity};
pub use model::*;

/// A configuration that has no errors, and the warnings reading it produced.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Diagnostics,
}

/// Reads the configuration at `path`. Fails with every diagnostic, errors and warnings,
/// when there is at least one error.
pub fn load(path: &Path) -> Result<Loaded, Diagnostics> {
    let file = Arc::new(path.to_path_buf());
    match std::fs::read_to_string(path) {
        Ok(text) => read(file, &text),
        Err(err) => {
            let mut diags = Diagnostics::default();
            diags.error(
                &Pos {
                    file,
                    line: 1,
                    col: 1,
                },
                format!("cannot read: {err}"),
            );
            Err(diags)
        }
    }
}

/// Reads configuration text as if it came from a file named `name`.
pub fn parse_str(name: impl Into<PathBuf>, text: &str) -> Result<Loaded, Diagnostics> {
    read(Arc::new(name.into()), text)
}

fn read(file: Arc<PathBuf>, text: &str) -> Result<Loaded, Diagnostics> {
    let mut diags = Diagnostics::default();
    let lines = lexer::lex(&file, text, &mut diags);
    let nodes = tree::parse(lines, &mut diags);
    let config = read::config(&nodes, &mut diags);
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
