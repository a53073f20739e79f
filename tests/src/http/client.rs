//! Clients that say which real server answered.

use std::{
    collections::BTreeMap,
    io::{BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    sync::atomic::{AtomicBool, Ordering},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, ensure};

use super::wire::read_head;
use crate::{Netns, scaled};

/// Bounds each connect, read and write: on a healthy test bed everything is sub-millisecond,
/// so this only ever ends a request that is not going to complete.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Who answered each of a series of requests, in order; an error is kept as its message.
#[derive(Debug)]
pub struct Answers {
    pub each: Vec<Result<String, String>>,
}

impl Answers {
    /// How many requests each server answered.
    pub fn per_server(&self) -> BTreeMap<&str, usize> {
        let mut counts = BTreeMap::new();
        for name in self.each.iter().flatten() {
            *counts.entry(name.as_str()).or_default() += 1;
        }
        counts
    }

    /// Whether there was a request, and every one was answered: otherwise an error that
    /// says how many failed `during` what, and why.
    pub fn all_answered(&self, during: &str) -> anyhow::Result<()> {
        ensure!(!self.each.is_empty(), "no request was made {during}");
        let failed = self.failures();
        ensure!(
            failed.is_empty(),
            "{} of {} requests failed {during}: {failed:?}",
            failed.len(),
            self.each.len()
        );
        Ok(())
    }

    /// The requests that failed, as (index, error).
    pub fn failures(&self) -> Vec<(usize, &str)> {
        let failed = self.each.iter().enumerate();
        failed
            .filter_map(|(i, answer)| answer.as_ref().err().map(|err| (i, err.as_str())))
            .collect()
    }
}

/// A keep-alive HTTP connection: every request goes over the same TCP flow, so it shows
/// whether an established flow stays on its real server.
pub struct HttpConnection {
    stream: BufReader<TcpStream>,
    peer: SocketAddr,
}

impl HttpConnection {
    /// Sends one request and returns the name of the server that answered.
    pub fn get(&mut self) -> anyhow::Result<String> {
        self.exchange(false)
    }

    /// The client side of the flow, which identifies it in the data plane's flow table.
    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.stream.get_ref().local_addr()?)
    }

    fn open(peer: SocketAddr) -> anyhow::Result<Self> {
        let timeout = scaled(TIMEOUT);
        let stream = TcpStream::connect_timeout(&peer, timeout)
            .with_context(|| format!("connect to {peer}"))?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        Ok(Self {
            stream: BufReader::new(stream),
            peer,
        })
    }

    fn exchange(&mut self, close: bool) -> anyhow::Result<String> {
        let peer = self.peer;
        let connection = if close { "close" } else { "keep-alive" };
        let request = format!("GET / HTTP/1.1\r\nHost: {peer}\r\nConnection: {connection}\r\n\r\n");
        self.stream
            .get_mut()
            .write_all(request.as_bytes())
            .with_context(|| format!("send request to {peer}"))?;
        let head = read_head(&mut self.stream)
            .with_context(|| format!("read response from {peer}"))?
            .with_context(|| format!("{peer} closed the connection without answering"))?;
        ensure!(
            head.start.starts_with("HTTP/1.1 200 "),
            "{peer} answered {:?}",
            head.start
        );
        let mut body = String::new();
        (&mut self.stream)
            .take(head.content_length)
            .read_to_string(&mut body)
            .with_context(|| format!("read response body from {peer}"))?;
        Ok(body.trim_end().to_owned())
    }
}

impl Netns {
    /// Opens a keep-alive connection from this namespace.
    pub fn http_connect(&self, addr: SocketAddr) -> anyhow::Result<HttpConnection> {
        self.run(|| HttpConnection::open(addr))?
    }

    /// One request on a fresh connection; returns who answered.
    pub fn http_get(&self, addr: SocketAddr) -> anyhow::Result<String> {
        self.run(|| fetch_once(addr))?
    }

    /// `count` requests in a row, each on a fresh connection (so each is a new flow for the
    /// scheduler); failures are recorded, not fatal.
    pub fn http_get_many(&self, addr: SocketAddr, count: usize) -> anyhow::Result<Answers> {
        let each = self.run(|| {
            (0..count)
                .map(|_| fetch_once(addr).map_err(|err| format!("{err:#}")))
                .collect()
        })?;
        Ok(Answers { each })
    }
}

impl Netns {
    /// A request on a new connection every `pace` until `stop` is set, or for `limit` at
    /// most whatever happens to the test: a client that keeps coming while the test does
    /// something to the director. Failures are recorded, not fatal.
    pub fn http_get_until(
        &self,
        addr: SocketAddr,
        pace: Duration,
        stop: &AtomicBool,
        limit: Duration,
    ) -> anyhow::Result<Answers> {
        self.run(|| {
            let began = Instant::now();
            let mut each = Vec::new();
            while !stop.load(Ordering::Relaxed) && began.elapsed() < limit {
                let next = Instant::now() + pace;
                each.push(fetch_once(addr).map_err(|err| format!("{err:#}")));
                // Pacing, not waiting for anything: the next request is due at `next`.
                thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            Answers { each }
        })
    }
}

fn fetch_once(addr: SocketAddr) -> anyhow::Result<String> {
    HttpConnection::open(addr)?.exchange(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_count_servers_and_list_failures() {
        let answers = Answers {
            each: vec![
                Ok("real1".into()),
                Err("connect: refused".into()),
                Ok("real2".into()),
                Ok("real1".into()),
            ],
        };
        let per_server: Vec<_> = answers.per_server().into_iter().collect();
        assert_eq!(per_server, [("real1", 2), ("real2", 1)]);
        assert_eq!(answers.failures(), [(1, "connect: refused")]);
    }
}
