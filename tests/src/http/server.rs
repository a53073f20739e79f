//! The real servers behind a VIP.

use std::{
    convert::Infallible,
    io::{self, BufReader, Write},
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    thread,
    time::Duration,
};

use anyhow::Context;

use super::wire::read_head;
use crate::{Child, Netns, scaled, wait_until, workspace_binary};

const SERVER_BINARY: &str = "xlb-http-real";
const START_TIMEOUT: Duration = Duration::from_secs(10);
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Answers every request on `listener`, on as many keep-alive connections as clients open,
/// with the body `<name>\n`; runs until the process dies.
///
/// This is the body of the `xlb-http-real` binary: the servers are processes so that killing
/// one looks to the network exactly like a real server crashing.
pub fn serve_http(name: &str, listener: TcpListener) -> io::Result<Infallible> {
    let body = format!("{name}\n");
    loop {
        let (stream, _) = listener.accept()?;
        let body = body.clone();
        thread::spawn(move || {
            // A client that misbehaves only loses its own connection.
            let _ = answer(&body, stream);
        });
    }
}

fn answer(body: &str, stream: TcpStream) -> io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    while let Some(request) = read_head(&mut reader)? {
        io::copy(
            &mut io::Read::take(&mut reader, request.content_length),
            &mut io::sink(),
        )?;
        let connection = if request.close { "close" } else { "keep-alive" };
        // One write, so the response leaves in one segment like a real server's.
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
             Connection: {connection}\r\n\r\n{body}",
            body.len()
        );
        writer.write_all(response.as_bytes())?;
        if request.close {
            break;
        }
    }
    Ok(())
}

/// A running `xlb-http-real` process; killed when dropped.
pub struct HttpServer {
    name: String,
    port: u16,
    process: Child,
}

impl HttpServer {
    /// The name it answers with.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills it with SIGKILL, as a crash would: its connections are reset and its port
    /// refuses new ones.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        self.process.kill()?;
        Ok(())
    }

    pub fn process(&mut self) -> &mut Child {
        &mut self.process
    }
}

impl Netns {
    /// Starts a server named `name` on `port` of every address here (IPv4 and IPv6, the
    /// VIP on `lo` included), and returns once it accepts connections.
    pub fn start_http_server(&self, name: &str, port: u16) -> anyhow::Result<HttpServer> {
        let mut command = self.command(workspace_binary(SERVER_BINARY)?);
        command.arg(name).arg(format!("[::]:{port}"));
        // Its log says nothing a failing test needs, except when it cannot start (see below).
        let mut process = self.spawn(&format!("http-{name}"), command)?.quiet();
        let local = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let listening = wait_until(
            &format!("{name} to listen on port {port} in {}", self.name()),
            START_TIMEOUT,
            Duration::from_millis(20),
            || -> anyhow::Result<TcpStream> {
                Ok(self.run(|| TcpStream::connect_timeout(&local, scaled(PROBE_TIMEOUT)))??)
            },
        );
        if let Err(err) = listening {
            let _ = process.kill();
            return Err(err).with_context(|| format!("server stderr: {}", process.stderr()));
        }
        Ok(HttpServer {
            name: name.to_owned(),
            port,
            process,
        })
    }
}
