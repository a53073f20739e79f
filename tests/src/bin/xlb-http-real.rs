//! A real server for xlb's tests: `xlb-http-real NAME LISTEN_ADDR` answers every HTTP
//! request with `NAME`.

use std::{net::TcpListener, process::ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [name, listen] = args.as_slice() else {
        eprintln!("usage: xlb-http-real NAME LISTEN_ADDR (e.g. real1 [::]:80)");
        return ExitCode::from(2);
    };
    let listener = match TcpListener::bind(listen.as_str()) {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("xlb-http-real: cannot listen on {listen}: {err}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("xlb-http-real: {name} listening on {listen}");
    let Err(err) = xlb_testbed::serve_http(name, listener);
    eprintln!("xlb-http-real: {name}: {err}");
    ExitCode::FAILURE
}
