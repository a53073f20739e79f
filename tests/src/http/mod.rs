//! Real HTTP/1.1 over real TCP between namespaces: servers that answer with their own name,
//! and clients that report who answered.

mod client;
mod server;
mod wire;

pub use client::{Answers, HttpConnection};
pub use server::{HttpServer, serve_http};
