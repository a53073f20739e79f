//! The asking end of the control socket.

use std::{
    io::{BufRead as _, BufReader, Write as _},
    os::unix::net::UnixStream,
    path::Path,
    time::Duration,
};

use thiserror::Error;

use super::{Request, Response, Status, socket_path};

#[derive(Debug, Error)]
pub enum CtlError {
    #[error("cannot reach the agent at {path}: is `xlb run` running with this run directory?")]
    Connect {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("talking to the agent")]
    Io(#[from] std::io::Error),
    #[error("the agent sent something unreadable")]
    Decode(#[from] serde_json::Error),
    #[error("the agent refused: {0}")]
    Refused(String),
}

/// Asks the agent in `run_dir` for its status.
pub fn status(run_dir: &Path) -> Result<Status, CtlError> {
    match ask(run_dir, &Request::Status)? {
        Response::Status(status) => Ok(status),
        Response::Error(message) => Err(CtlError::Refused(message)),
    }
}

fn ask(run_dir: &Path, request: &Request) -> Result<Response, CtlError> {
    let path = socket_path(run_dir);
    let stream = UnixStream::connect(&path).map_err(|source| CtlError::Connect {
        path: path.display().to_string(),
        source,
    })?;
    let timeout = Some(Duration::from_secs(5));
    stream.set_read_timeout(timeout)?;
    stream.set_write_timeout(timeout)?;
    let mut line = serde_json::to_vec(request)?;
    line.push(b'\n');
    (&stream).write_all(&line)?;
    let mut reply = String::new();
    BufReader::new(&stream).read_line(&mut reply)?;
    Ok(serde_json::from_str(&reply)?)
}
