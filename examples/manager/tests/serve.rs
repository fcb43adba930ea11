//! The manager's listener (`manager serve`, `src/manager/serve.rs`) under hostile or
//! careless clients, and its shutdown: each test starts the `manager` binary on a free
//! loopback port with a fresh SQLite file and talks raw HTTP/1.1 to it, so half-sent
//! requests are really half sent.
//!
//! - admin endpoints: 401 without or with a wrong credential, 403 when no credential is
//!   configured, 200/202 with it; a credential too short to be safe stops the start;
//! - a forged notification (wrong bearer): 401, counted as refused;
//! - oversized bodies, announced or streamed: 413;
//! - slow clients: a socket that sends nothing or half the headers is closed after the read
//!   timeout; one that sends half a body gets 408 and is closed;
//! - SIGTERM (and SIGINT): stops accepting, lets an in-flight request finish, exits 0.

#![cfg(unix)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use vppkit::store::SecretCipher;

const ADMIN: &str = "test-admin-credential-0123456789";
/// The `--read-timeout` the tests run with.
const READ_TIMEOUT: Duration = Duration::from_secs(1);

mod support;
use support::manager_binary;

/// A running `manager serve`.
struct Serve {
    child: Child,
    stdout: BufReader<ChildStdout>,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Serve {
    /// Starts `serve` with the admin credential `admin` (unset when `None`) and waits for
    /// its ready line.
    fn start(admin: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("serve.db").display().to_string();
        let mut command = Command::new(manager_binary());
        command
            .args(["serve", "--json", "--listen", "127.0.0.1:0", "--db", &db])
            .args(["--read-timeout", &READ_TIMEOUT.as_secs().to_string()])
            .args(["--shutdown-timeout", "10"])
            .env(
                "VPPKIT_SECRET_KEY",
                SecretCipher::generate_key_base64().expose(),
            )
            .env_remove("VPPKIT_DB")
            .env_remove("VPPKIT_APPLE_URL")
            .env_remove("VPPKIT_WEBHOOK_URL")
            .env_remove("VPPKIT_LISTEN")
            .env_remove("VPPKIT_ADMIN_TOKEN")
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(token) = admin {
            command.env("VPPKIT_ADMIN_TOKEN", token);
        }
        let mut child = command.spawn().expect("manager serve starts");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let ready: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("ready line is not JSON ({e}): {line:?}"));
        let addr = ready["listening"].as_str().unwrap().parse().unwrap();
        assert_eq!(ready["admin"], admin.is_some(), "{ready}");
        Self {
            child,
            stdout,
            addr,
            _dir: dir,
        }
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s
    }

    /// Sends a whole request and returns the status and the response text.
    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, String) {
        let mut s = self.connect();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: manager\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).unwrap();
        // The server may answer (413) before reading a large body, and close.
        let _ = s.write_all(body);
        read_response(&mut s)
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits (at most `limit`) for the process to exit; its status and the stop line.
    fn wait_exit(mut self, limit: Duration) -> (Option<i32>, Value) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut rest = String::new();
                self.stdout.read_to_string(&mut rest).unwrap();
                let last = rest.lines().last().unwrap_or("null").to_owned();
                let value = serde_json::from_str(&last)
                    .unwrap_or_else(|e| panic!("stop line is not JSON ({e}): {rest:?}"));
                return (status.code(), value);
            }
            if started.elapsed() > limit {
                let _ = self.child.kill();
                panic!("serve did not exit within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads a response until the server closes the connection: (status, whole text).
fn read_response(s: &mut TcpStream) -> (u16, String) {
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    (status, text)
}

/// How long after `opened` the server closed `s` (read returns end of file or a reset),
/// and what it sent.
fn time_to_close(s: &mut TcpStream, opened: Instant) -> (Duration, String) {
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    (opened.elapsed(), String::from_utf8_lossy(&raw).into_owned())
}

#[test]
fn admin_endpoints_need_the_credential() {
    let serve = Serve::start(Some(ADMIN));
    let bearer = format!("Bearer {ADMIN}");
    let wrong = format!("Bearer {ADMIN}x");

    let (status, text) = serve.request("GET", "/report", &[], b"");
    assert_eq!(status, 401, "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("www-authenticate: bearer"),
        "{text}"
    );
    assert_eq!(
        serve
            .request("GET", "/report", &[("Authorization", &wrong)], b"")
            .0,
        401
    );
    assert_eq!(
        serve
            .request(
                "GET",
                "/report",
                &[("Authorization", "Basic YWRtaW46YWRtaW4=")],
                b""
            )
            .0,
        401
    );
    assert_eq!(serve.request("POST", "/sync", &[], b"").0, 401);
    assert_eq!(
        serve
            .request("POST", "/sync", &[("Authorization", &wrong)], b"")
            .0,
        401
    );

    let (status, text) = serve.request("GET", "/report", &[("Authorization", &bearer)], b"");
    assert_eq!(status, 200, "{text}");
    let body = text.split("\r\n\r\n").nth(1).unwrap();
    let report: Value = serde_json::from_str(body).unwrap();
    assert!(report["locations"].is_array(), "{report}");
    assert_eq!(
        serve
            .request("POST", "/sync", &[("Authorization", &bearer)], b"")
            .0,
        202
    );
    // The health check stays open to load balancers.
    assert_eq!(serve.request("GET", "/healthz", &[], b"").0, 200);
}

#[test]
fn admin_endpoints_are_off_without_a_configured_credential() {
    let serve = Serve::start(None);
    let (status, text) = serve.request("GET", "/report", &[], b"");
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("VPPKIT_ADMIN_TOKEN"), "{text}");
    let any = format!("Bearer {ADMIN}");
    assert_eq!(
        serve
            .request("POST", "/sync", &[("Authorization", &any)], b"")
            .0,
        403
    );
    assert_eq!(serve.request("GET", "/healthz", &[], b"").0, 200);
}

#[test]
fn a_short_admin_credential_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("serve.db").display().to_string();
    let out = Command::new(manager_binary())
        .args(["serve", "--json", "--listen", "127.0.0.1:0", "--db", &db])
        .env(
            "VPPKIT_SECRET_KEY",
            SecretCipher::generate_key_base64().expose(),
        )
        .env("VPPKIT_ADMIN_TOKEN", "admin")
        .env_remove("VPPKIT_DB")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let error: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(error["error"]["kind"], "usage");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("VPPKIT_ADMIN_TOKEN"), "{message}");
    assert!(
        !message.contains("admin\""),
        "the value is not echoed: {message}"
    );
}

#[test]
fn forged_and_oversized_notifications_are_refused() {
    let serve = Serve::start(Some(ADMIN));
    let notification =
        br#"{"notificationId":"n-1","notificationType":"ASSET_COUNT","uId":"1","notification":{}}"#;
    let (status, text) = serve.request(
        "POST",
        "/vpp/notifications",
        &[
            ("Authorization", "Bearer forged"),
            ("Content-Type", "application/json"),
        ],
        notification,
    );
    assert_eq!(status, 401, "{text}");
    let (status, _) = serve.request("POST", "/vpp/notifications", &[], notification);
    assert_eq!(status, 401, "no bearer at all");
    // The admin credential is not the notification credential.
    let admin = format!("Bearer {ADMIN}");
    assert_eq!(
        serve
            .request(
                "POST",
                "/vpp/notifications",
                &[("Authorization", &admin)],
                notification
            )
            .0,
        401
    );

    // Announced as too large: refused before the body is read.
    let mut s = serve.connect();
    s.write_all(
        b"POST /vpp/notifications HTTP/1.1\r\nHost: manager\r\nContent-Length: 10000000\r\n\r\n",
    )
    .unwrap();
    let started = Instant::now();
    let (status, _) = read_response(&mut s);
    assert_eq!(status, 413);
    assert!(started.elapsed() < READ_TIMEOUT, "{:?}", started.elapsed());

    // Streamed without a length: refused once 256 KiB have arrived.
    let mut s = serve.connect();
    s.write_all(
        b"POST /vpp/notifications HTTP/1.1\r\nHost: manager\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    .unwrap();
    let chunk = vec![b' '; 64 * 1024];
    for _ in 0..5 {
        let _ = s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes());
        let _ = s.write_all(&chunk);
        let _ = s.write_all(b"\r\n");
    }
    let (status, _) = read_response(&mut s);
    assert_eq!(status, 413);

    // A body of exactly the limit is read and handed on (then refused for its bearer).
    let padded = vec![b' '; 256 * 1024];
    assert_eq!(
        serve
            .request(
                "POST",
                "/vpp/notifications",
                &[("Authorization", "Bearer forged")],
                &padded
            )
            .0,
        401
    );

    serve.signal("TERM");
    let (code, stop) = serve.wait_exit(Duration::from_secs(15));
    assert_eq!(code, Some(0), "{stop}");
    assert_eq!(stop["notifications"]["refused"], 4, "{stop}");
    assert_eq!(stop["notifications"]["applied"], 0, "{stop}");
}

#[test]
fn slow_clients_are_closed_after_the_read_timeout() {
    let serve = Serve::start(Some(ADMIN));
    let margin = READ_TIMEOUT + Duration::from_millis(1500);
    let bounds = |d: Duration, what: &str| {
        assert!(
            d >= READ_TIMEOUT - Duration::from_millis(200) && d <= margin,
            "{what}: closed after {d:?}, read timeout {READ_TIMEOUT:?}"
        );
    };

    // Connects and sends nothing.
    let opened = Instant::now();
    let mut silent = serve.connect();
    // Sends half the headers.
    let mut half_head = serve.connect();
    half_head
        .write_all(b"POST /vpp/notifications HTTP/1.1\r\nHost: manager\r\nContent-Le")
        .unwrap();
    // Sends the headers and half the body.
    let mut half_body = serve.connect();
    half_body
        .write_all(
            b"POST /vpp/notifications HTTP/1.1\r\nHost: manager\r\nContent-Length: 100\r\n\r\n{\"notif",
        )
        .unwrap();
    // Many at once: none of them holds the server.
    let crowd_opened = Instant::now();
    let mut crowd: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut s = serve.connect();
            s.write_all(b"GET /report HTTP/1.1\r\nHost: x\r\n").unwrap();
            s
        })
        .collect();

    // Read one after the other: a socket read later was closed no later than it reads.
    let (d, sent) = time_to_close(&mut silent, opened);
    bounds(d, "silent socket");
    assert!(sent.is_empty(), "{sent:?}");
    let (d, _) = time_to_close(&mut half_head, opened);
    bounds(d, "half-sent headers");
    let (d, sent) = time_to_close(&mut half_body, opened);
    bounds(d, "half-sent body");
    assert!(sent.starts_with("HTTP/1.1 408"), "{sent:?}");
    for s in &mut crowd {
        let (d, _) = time_to_close(s, crowd_opened);
        assert!(d <= margin, "crowd socket closed after {d:?}");
    }
    // Still serving.
    assert_eq!(serve.request("GET", "/healthz", &[], b"").0, 200);
}

#[test]
fn sigterm_finishes_in_flight_requests_and_exits_zero() {
    let serve = Serve::start(Some(ADMIN));
    // A request in flight: headers sent, the body not yet.
    let mut in_flight = serve.connect();
    let body = br#"{"notificationId":"n-2","notificationType":"TEST_NOTIFICATION"}"#;
    in_flight
        .write_all(
            format!(
                "POST /vpp/notifications HTTP/1.1\r\nHost: manager\r\nAuthorization: Bearer forged\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .unwrap();
    in_flight.write_all(&body[..10]).unwrap();
    std::thread::sleep(Duration::from_millis(200));

    let signalled = Instant::now();
    serve.signal("TERM");
    // New connections are refused once the listener is closed.
    let mut refused = false;
    while signalled.elapsed() < Duration::from_millis(800) {
        if TcpStream::connect(serve.addr).is_err() {
            refused = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(refused, "still accepting after SIGTERM");
    // The in-flight request still gets its answer.
    in_flight.write_all(&body[10..]).unwrap();
    let (status, text) = read_response(&mut in_flight);
    assert_eq!(status, 401, "{text}");

    let (code, stop) = serve.wait_exit(Duration::from_secs(15));
    assert_eq!(code, Some(0), "{stop}");
    assert_eq!(stop["stopped"], true);
    assert_eq!(stop["signal"], "SIGTERM");
    assert_eq!(stop["connectionsCut"], 0);
    assert_eq!(stop["syncInterrupted"], false);
    assert_eq!(stop["notifications"]["refused"], 1);
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "stopped in {:?}",
        signalled.elapsed()
    );
}

#[test]
fn ctrl_c_stops_it_the_same_way() {
    let serve = Serve::start(None);
    serve.signal("INT");
    let (code, stop) = serve.wait_exit(Duration::from_secs(15));
    assert_eq!(code, Some(0), "{stop}");
    assert_eq!(stop["signal"], "Ctrl-C");
}
