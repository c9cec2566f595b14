//! `degrade --url`: the flag commands over chaos-tower's admin API.
//!
//! A small HTTP/1.1 client on `std::net::TcpStream` (one request per connection, `Connection: close`),
//! enough for the admin API on loopback or a trusted network: `http://` only, no proxy, no TLS (reach a
//! remote service through an SSH tunnel or a sidecar). degrade-flags stays free of Tower, hyper and tokio.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde_json::Value;

use crate::Cmd;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer read (the admin API's answers are small).
const MAX_ANSWER: u64 = 4 * 1024 * 1024;

/// Where the admin API is and how to prove who we are.
pub(crate) struct Remote {
    host: String,
    port: u16,
    /// The path prefix, without a trailing `/` (`/admin`).
    base: String,
    token: String,
}

/// The token for `--url`: the first token of `--token-file` (a bare token or `id:token`), else
/// `DEGRADE_TOKEN`. Errors never show the token.
pub(crate) fn token(file: Option<&std::path::Path>) -> Result<String, String> {
    if let Some(file) = file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("{}: cannot read the token file: {e}", file.display()))?;
        let entry = brownout_foundation::token_file::entries(&text)
            .next()
            .ok_or_else(|| format!("{}: no token in the file", file.display()))?;
        // `id:token` as the admin API reads it; a line whose part before `:` is no id is a bare token.
        let token = match entry.id {
            Some(id) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)) => {
                entry.token
            }
            _ => entry.text,
        };
        return Ok(token.to_owned());
    }
    match std::env::var("DEGRADE_TOKEN") {
        Ok(t) if !t.trim().is_empty() => Ok(t.trim().to_owned()),
        _ => Err("--url needs a token: --token-file FILE or the DEGRADE_TOKEN environment variable".into()),
    }
}

impl Remote {
    /// Parses `http://host[:port][/prefix]`.
    pub(crate) fn new(url: &str, token: String) -> Result<Remote, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            format!("--url `{url}`: only http:// URLs are supported (reach a remote service through a tunnel)")
        })?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let bare_v6 = authority.starts_with('[') && authority.ends_with(']');
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !bare_v6 => (h, p.parse::<u16>().map_err(|_| format!("--url `{url}`: bad port `{p}`"))?),
            _ => (authority, 80),
        };
        if host.is_empty() {
            return Err(format!("--url `{url}`: no host"));
        }
        if token.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err("the token must be visible ASCII without spaces".into());
        }
        Ok(Remote { host: host.to_owned(), port, base: path.trim_end_matches('/').to_owned(), token })
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}:{}{}{path}", self.host, self.port, self.base)
    }

    /// Sends one request; `Ok` with the JSON of a 2xx answer, `Err` with a message for anything else.
    pub(crate) fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
        let url = self.url(path);
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        let addrs = (host, self.port).to_socket_addrs().map_err(|e| format!("{url}: cannot resolve the host: {e}"))?;
        let mut last = None;
        let mut stream = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let mut stream = stream.ok_or_else(|| {
            let why = last.map_or_else(|| "no address".to_owned(), |e| e.to_string());
            format!("cannot connect to {url}: {why} (is the service running with --admin-token-file?)")
        })?;
        let io = |e: std::io::Error| format!("{url}: {e}");
        stream.set_read_timeout(Some(IO_TIMEOUT)).map_err(io)?;
        stream.set_write_timeout(Some(IO_TIMEOUT)).map_err(io)?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut request = format!(
            "{method} {}{path} HTTP/1.1\r\nHost: {}:{}\r\nAuthorization: Bearer {}\r\nAccept: application/json\r\n\
             Connection: close\r\nContent-Length: {}\r\n",
            self.base,
            self.host,
            self.port,
            self.token,
            body.len()
        );
        if !body.is_empty() {
            request.push_str("Content-Type: application/json\r\n");
        }
        request.push_str("\r\n");
        request.push_str(&body);
        stream.write_all(request.as_bytes()).map_err(io)?;
        let (status, headers, answer) = read_response(stream).map_err(|e| format!("{url}: bad answer: {e}"))?;
        let json: Option<Value> = serde_json::from_slice(&answer).ok();
        match status {
            200..=299 => json.ok_or_else(|| format!("{url}: the answer is not JSON")),
            401 => Err(format!(
                "{url}: 401 unauthorised: the admin API refused the token (check --token-file or DEGRADE_TOKEN)"
            )),
            429 => {
                let after = headers.iter().find(|(n, _)| n == "retry-after").map_or("a while", |(_, v)| v.as_str());
                Err(format!("{url}: 429 too many failed attempts; retry after {after} s"))
            }
            _ => {
                let detail = json
                    .as_ref()
                    .and_then(|j| Some((j.get("field")?.as_str()?, j.get("reason")?.as_str()?)))
                    .map(|(f, r)| if f.is_empty() { r.to_owned() } else { format!("{f}: {r}") })
                    .unwrap_or_else(|| String::from_utf8_lossy(&answer).chars().take(200).collect());
                Err(format!("{url}: {status}: {detail}"))
            }
        }
    }
}

/// An answer: status, lowercase header names and values, body.
type Answer = (u16, Vec<(String, String)>, Vec<u8>);

/// Reads a whole HTTP/1.1 response: status, lowercase headers, body (by `Content-Length`, chunked, or to EOF).
fn read_response(stream: TcpStream) -> Result<Answer, String> {
    let mut reader = BufReader::new(stream.take(MAX_ANSWER));
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|e| e.to_string())?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("status line `{}`", line.trim()))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).map_err(|e| e.to_string())?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((n, v)) = l.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    let mut body = Vec::new();
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            line.clear();
            reader.read_line(&mut line).map_err(|e| e.to_string())?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| format!("chunk size `{}`", line.trim()))?;
            if size == 0 {
                break;
            }
            let mut chunk = vec![0; size];
            reader.read_exact(&mut chunk).map_err(|e| e.to_string())?;
            body.extend_from_slice(&chunk);
            line.clear();
            reader.read_line(&mut line).map_err(|e| e.to_string())?;
        }
    } else if let Some(len) = header("content-length").and_then(|v| v.parse::<u64>().ok()) {
        reader.take(len).read_to_end(&mut body).map_err(|e| e.to_string())?;
    } else {
        reader.read_to_end(&mut body).map_err(|e| e.to_string())?;
    }
    Ok((status, headers, body))
}

/// A flag name safe to put in a path: what flag files allow, never `.` or `..`.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= 128
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok { Ok(()) } else { Err(format!("`{}` is not a flag name", name.escape_debug())) }
}

/// `list`, `get`, `set`, `unset` over the API; prints what the file commands print. (`validate` and
/// `completions` never get here: `main` refuses them with `--url`.)
pub(crate) fn run(remote: &Remote, command: &Cmd) -> Result<(), String> {
    let row = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).unwrap_or("").to_owned();
    match command {
        Cmd::List { json } => {
            let answer = remote.call("GET", "/flags", None)?;
            let flags = answer.get("flags").and_then(Value::as_array).cloned().unwrap_or_default();
            if *json {
                println!("{}", serde_json::json!({ "flags": flags }));
                return Ok(());
            }
            println!("{:<36} {:<10} {:<12} {:<12} source", "flag", "type", "value", "default");
            for f in &flags {
                println!(
                    "{:<36} {:<10} {:<12} {:<12} {}",
                    row(f, "name"),
                    row(f, "kind"),
                    row(f, "value"),
                    row(f, "default"),
                    row(f, "source")
                );
            }
            Ok(())
        }
        Cmd::Get { name } => {
            check_name(name)?;
            let f = remote.call("GET", &format!("/flags/{name}"), None)?;
            println!("{}", row(&f, "value"));
            Ok(())
        }
        Cmd::Set { name, value } => {
            check_name(name)?;
            let f = remote.call("PUT", &format!("/flags/{name}"), Some(&serde_json::json!({ "value": value })))?;
            println!("{name} = {} ({})", row(&f, "value"), row(&f, "source"));
            Ok(())
        }
        Cmd::Unset { name } => {
            check_name(name)?;
            let f = remote.call("DELETE", &format!("/flags/{name}"), None)?;
            println!("{name} = {} ({})", row(&f, "value"), row(&f, "source"));
            Ok(())
        }
        Cmd::Validate | Cmd::Completions { .. } => {
            Err("with --url: list, get NAME, set NAME VALUE or unset NAME".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_http_with_a_host_an_optional_port_and_a_prefix() {
        let r = Remote::new("http://127.0.0.1:8080/admin/", "t".repeat(16)).unwrap();
        assert_eq!((r.host.as_str(), r.port, r.base.as_str()), ("127.0.0.1", 8080, "/admin"));
        assert_eq!(r.url("/flags"), "http://127.0.0.1:8080/admin/flags");
        let r = Remote::new("http://localhost", "t".repeat(16)).unwrap();
        assert_eq!((r.host.as_str(), r.port, r.base.as_str()), ("localhost", 80, ""));
        let r = Remote::new("http://[::1]:9000/admin", "t".repeat(16)).unwrap();
        assert_eq!((r.host.as_str(), r.port), ("[::1]", 9000));
        let r = Remote::new("http://[::1]/admin", "t".repeat(16)).unwrap();
        assert_eq!((r.host.as_str(), r.port), ("[::1]", 80));
        for bad in ["https://x/admin", "127.0.0.1:8080", "http://:80/", "http://h:port/", "http://h:99999/"] {
            assert!(Remote::new(bad, "t".repeat(16)).is_err(), "{bad}");
        }
        let e = Remote::new("http://h/", "has a space in it".into()).err().unwrap();
        assert!(!e.contains("space in it"), "the token is not echoed: {e}");
    }

    #[test]
    fn flag_names_cannot_escape_the_flags_path() {
        assert!(check_name("quotes.source").is_ok());
        for bad in ["", ".", "..", "../chaos/disarm", "a/b", "a?b", "a b", "a%2Fb"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_token_file_holds_a_bare_token_or_an_id_and_a_token() {
        let dir = std::env::temp_dir();
        let file = dir.join(format!("degrade-token-test-{}", std::process::id()));
        std::fs::write(&file, "# ops\n\nops:0123456789abcdef\nother:xxxxxxxxxxxxxxxx\n").unwrap();
        assert_eq!(token(Some(&file)).unwrap(), "0123456789abcdef");
        std::fs::write(&file, "  0123456789abcdef  \n").unwrap();
        assert_eq!(token(Some(&file)).unwrap(), "0123456789abcdef");
        // as the admin API reads it: the id and the token trimmed; a part before `:` that is no id is not split
        std::fs::write(&file, "ops : 0123456789abcdef\n").unwrap();
        assert_eq!(token(Some(&file)).unwrap(), "0123456789abcdef");
        std::fs::write(&file, "a+b/c:0123456789abcdef\n").unwrap();
        assert_eq!(token(Some(&file)).unwrap(), "a+b/c:0123456789abcdef");
        std::fs::write(&file, "# nothing\n").unwrap();
        assert!(token(Some(&file)).unwrap_err().contains("no token"));
        std::fs::remove_file(&file).unwrap();
        assert!(token(Some(&file)).unwrap_err().contains("cannot read"));
    }
}
