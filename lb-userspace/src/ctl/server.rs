//! The agent's end of the control socket.

use std::{io, path::PathBuf};

use tokio::{
    io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader},
    net::{UnixListener, UnixStream},
    sync::{mpsc, oneshot},
};
use tracing::debug;

use super::{Request, Response};

/// A request waiting for the agent's answer.
pub struct Pending {
    pub request: Request,
    pub reply: oneshot::Sender<Response>,
}

/// Accepts connections and hands their requests to the agent's event loop, which owns
/// everything a reply is made of.
pub struct Server {
    path: PathBuf,
}

impl Server {
    /// Listens at `path` (replacing a stale socket) and forwards requests to `requests`.
    pub fn start(path: PathBuf, requests: mpsc::Sender<Pending>) -> io::Result<Self> {
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        let listener = UnixListener::bind(&path)?;
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, requests.clone()));
            }
        });
        Ok(Self { path })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn serve(stream: UnixStream, requests: mpsc::Sender<Pending>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let response = match serde_json::from_str::<Request>(&line) {
            Ok(request) => {
                let (reply, answer) = oneshot::channel();
                if requests.send(Pending { request, reply }).await.is_err() {
                    return;
                }
                match answer.await {
                    Ok(response) => response,
                    Err(_) => return,
                }
            }
            Err(err) => Response::Error(format!("bad request: {err}")),
        };
        let mut bytes = serde_json::to_vec(&response).expect("responses always serialise");
        bytes.push(b'\n');
        if let Err(err) = write.write_all(&bytes).await {
            debug!("control client went away: {err}");
            return;
        }
    }
}
