//! `record --pyroscope`: a Pyroscope-compatible receiver on loopback,
//! started by the test, decodes every request on its own (a protobuf wire
//! reader written here for the PushRequest, gunzip, then Go's `go tool
//! pprof` for the profile) and checks labels, windows and totals; then the
//! receiver failing: 503 then recovering, hanging, refusing connections,
//! answering 401. The waits are on requests arriving, bounded.

use crate::pprof::{check_share, read_with_go, RawProfile};
use crate::pythons;
use crate::target::{python_command, PYSAMPLER};
use flate2::read::GzDecoder;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How the receiver answers its request number n (from 0).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Reply {
    Status(u16),
    /// Reads the request and never answers.
    Hang,
}

#[derive(Debug, Clone)]
struct Request {
    path: String,
    query: BTreeMap<String, String>,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

#[derive(Default)]
struct Received {
    requests: Mutex<Vec<Request>>,
    arrived: Condvar,
}

struct Receiver {
    url: String,
    received: Arc<Received>,
}

impl Receiver {
    fn start(reply: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let received = Arc::new(Received::default());
        let shared = received.clone();
        let reply = Arc::new(reply);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let shared = shared.clone();
                let reply = reply.clone();
                std::thread::spawn(move || serve(stream, &shared, &*reply));
            }
        });
        Receiver { url, received }
    }

    fn requests(&self) -> Vec<Request> {
        self.received.requests.lock().unwrap().clone()
    }

    /// Waits until `n` requests arrived, at most `limit`.
    fn wait_for(&self, n: usize, limit: Duration) -> Vec<Request> {
        let end = Instant::now() + limit;
        let mut requests = self.received.requests.lock().unwrap();
        while requests.len() < n && Instant::now() < end {
            requests = self
                .received
                .arrived
                .wait_timeout(requests, end - Instant::now())
                .unwrap()
                .0;
        }
        assert!(
            requests.len() >= n,
            "{} requests of {n} in {limit:?}",
            requests.len()
        );
        requests.clone()
    }
}

/// One connection: requests until it closes (each answer closes it).
fn serve(stream: TcpStream, shared: &Received, reply: &dyn Fn(usize) -> Reply) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let target = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let length: usize = headers
        .get("content-length")
        .map(|l| l.parse().unwrap())
        .expect("a content-length (pysampler sends whole bodies)");
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let query = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), percent_decode(v)))
        .collect();
    let n = {
        let mut requests = shared.requests.lock().unwrap();
        requests.push(Request {
            path: path.to_string(),
            query,
            headers,
            body,
        });
        shared.arrived.notify_all();
        requests.len() - 1
    };
    let mut stream = stream;
    match reply(n) {
        Reply::Status(code) => {
            let body = if code == 200 { "{}" } else { "no" };
            let _ = write!(
                stream,
                "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
        Reply::Hang => {
            // Holds the connection open, unanswered, until the test ends.
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// A protobuf wire reader: (field, value) of a message, values of
/// length-delimited fields as bytes, varints as numbers.
enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

fn fields(mut msg: &[u8]) -> Vec<(u64, Value<'_>)> {
    fn varint(b: &mut &[u8]) -> u64 {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = b[0];
            *b = &b[1..];
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
        }
        v
    }
    let mut out = Vec::new();
    while !msg.is_empty() {
        let key = varint(&mut msg);
        match key & 7 {
            0 => out.push((key >> 3, Value::Varint(varint(&mut msg)))),
            2 => {
                let len = varint(&mut msg) as usize;
                out.push((key >> 3, Value::Bytes(&msg[..len])));
                msg = &msg[len..];
            }
            wire => panic!("wire type {wire} not expected here"),
        }
    }
    out
}

fn string(v: &Value) -> String {
    match v {
        Value::Bytes(b) => String::from_utf8(b.to_vec()).unwrap(),
        Value::Varint(_) => panic!("a string expected"),
    }
}

/// One series of a PushRequest: labels and the gzipped pprof.
struct Series {
    labels: BTreeMap<String, String>,
    pprof_gz: Vec<u8>,
}

fn push_request(body: &[u8]) -> Vec<Series> {
    fields(body)
        .iter()
        .filter(|(f, _)| *f == 1)
        .map(|(_, series)| {
            let Value::Bytes(series) = series else {
                panic!()
            };
            let mut s = Series {
                labels: BTreeMap::new(),
                pprof_gz: Vec::new(),
            };
            for (f, v) in fields(series) {
                let Value::Bytes(inner) = v else { panic!() };
                let inner = fields(inner);
                match f {
                    1 => {
                        let get = |n| string(&inner.iter().find(|(f, _)| *f == n).unwrap().1);
                        s.labels.insert(get(1), get(2));
                    }
                    2 => {
                        let Value::Bytes(raw) = inner.iter().find(|(f, _)| *f == 1).unwrap().1
                        else {
                            panic!()
                        };
                        s.pprof_gz = raw.to_vec();
                    }
                    _ => {}
                }
            }
            s
        })
        .collect()
}

/// (time_nanos, duration_nanos) of a gzipped pprof, and the profile as Go reads it.
fn read_pprof(gz: &[u8], dir: &Path, name: &str) -> ((u64, u64), RawProfile) {
    assert_eq!(&gz[..2], [0x1f, 0x8b], "the pprof is gzipped");
    let mut raw = Vec::new();
    GzDecoder::new(gz).read_to_end(&mut raw).unwrap();
    let mut time = (0, 0);
    for (f, v) in fields(&raw) {
        match (f, v) {
            (9, Value::Varint(t)) => time.0 = t,
            (10, Value::Varint(d)) => time.1 = d,
            _ => {}
        }
    }
    let path = dir.join(name);
    std::fs::write(&path, gz).unwrap();
    (time, read_with_go(&path))
}

fn out_dir(test: &str) -> PathBuf {
    let dir = pythons::scratch_dir().join("pyroscope").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `record ARGS -o DIR/local.pb.gz -- python proportions.py 60`, with the
/// basic auth variables set; returns its output and how long it took.
fn record(dir: &Path, args: &[&str]) -> (Output, Duration) {
    record_script(dir, args, "proportions.py", &["60"])
}

fn record_script(
    dir: &Path,
    args: &[&str],
    script: &str,
    script_args: &[&str],
) -> (Output, Duration) {
    let py = pythons::find("3.12");
    let local = dir.join("local.pb.gz");
    let started = Instant::now();
    let out = Command::new(PYSAMPLER)
        .arg("record")
        .args(["-r", "100", "-o", local.to_str().unwrap()])
        .args(args)
        .arg("--")
        .args(python_command(&py, script, script_args))
        .env("PYROSCOPE_BASIC_AUTH_USER", "alice")
        .env("PYROSCOPE_BASIC_AUTH_PASSWORD", "s3cret")
        .env("NO_PROXY", "127.0.0.1")
        .stdin(Stdio::null())
        .output()
        .expect("run pysampler record");
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "{stderr}");
    (out, took)
}

/// "pushed N window(s) (S samples)" from the summary.
fn pushed(stderr: &str) -> (u64, u64) {
    let rest = stderr
        .split("pushed ")
        .nth(1)
        .unwrap_or_else(|| panic!("no summary of the pushes in: {stderr}"));
    let words: Vec<&str> = rest.split_whitespace().collect();
    (
        words[0].parse().unwrap(),
        words[2].trim_start_matches('(').parse().unwrap(),
    )
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn pyroscope_push_api_windows_labels_and_totals() {
    let dir = out_dir("push");
    let receiver = Receiver::start(|_| Reply::Status(200));
    let (out, _) = record(
        &dir,
        &[
            "--pyroscope",
            &receiver.url,
            "--app-name",
            "checkout",
            "--tag",
            "env=prod",
            "--tag",
            "region=eu",
            "--pyroscope-tenant",
            "team-a",
            "--push-every",
            "2",
            "-d",
            "9",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Cuts at 2, 4, 6, 8 s, and the last window at 9 s.
    let requests = receiver.requests();
    assert_eq!(requests.len(), 5, "{stderr}");
    let local = read_with_go(&dir.join("local.pb.gz"));
    let pid = local.samples[0].2["pid"].clone();
    let mut end_of_last = None;
    let mut total = 0;
    let mut merged_three = 0;
    let mut merged_one = 0;
    for (i, r) in requests.iter().enumerate() {
        assert_eq!(r.path, "/push.v1.PusherService/Push");
        assert_eq!(r.headers["content-type"], "application/proto");
        assert_eq!(r.headers["x-scope-orgid"], "team-a");
        assert_eq!(r.headers["authorization"], "Basic YWxpY2U6czNjcmV0");
        let series = push_request(&r.body);
        assert_eq!(series.len(), 1, "one process, one series");
        let want: BTreeMap<String, String> = [
            ("__name__", "process_cpu".to_string()),
            ("service_name", "checkout".to_string()),
            ("env", "prod".to_string()),
            ("region", "eu".to_string()),
            ("pid", pid.clone()),
            ("hostname", hostname()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(series[0].labels, want);
        let ((time, duration), p) = read_pprof(&series[0].pprof_gz, &dir, &format!("w{i}.pb.gz"));
        assert_eq!(p.sample_types, ["samples/count", "cpu/nanoseconds[dflt]"]);
        assert!(p.total() > 0, "window {i} is empty");
        // Windows are contiguous: each starts where the last ended.
        if let Some(end) = end_of_last {
            assert_eq!(
                time, end,
                "window {i} starts at {time}, the last ended at {end}"
            );
        }
        end_of_last = Some(time + duration);
        total += p.total();
        merged_three += p.samples_in("three_quarters");
        merged_one += p.samples_in("one_quarter");
    }
    // No sample lost or sent twice: the windows add up to the local profile.
    assert_eq!(total, local.total(), "{stderr}");
    assert_eq!(merged_three, local.samples_in("three_quarters"));
    assert_eq!(merged_one, local.samples_in("one_quarter"));
    assert_eq!(pushed(&stderr), (5, total), "{stderr}");
    check_share(&local, "local profile beside the pushes");
}

/// Ingest API, ended by SIGTERM once two windows arrived: the last window
/// is sent before pysampler exits.
#[test]
fn pyroscope_ingest_api_and_sigterm() {
    let dir = out_dir("ingest");
    let receiver = Receiver::start(|_| Reply::Status(200));
    let py = pythons::find("3.12");
    let local = dir.join("local.pb.gz");
    let child = Command::new(PYSAMPLER)
        .arg("record")
        .args(["-r", "100", "-o", local.to_str().unwrap()])
        .args(["--pyroscope", &format!("{}/", receiver.url)])
        .args(["--pyroscope-api", "ingest", "--app-name", "checkout"])
        .args(["--tag", "env=prod", "--push-every", "1.5", "--"])
        .args(python_command(&py, "proportions.py", &["60"]))
        .env("NO_PROXY", "127.0.0.1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run pysampler record");
    receiver.wait_for(2, Duration::from_secs(60));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let requests = receiver.requests();
    // Every window the summary counts arrived, the last one included.
    let (windows, samples) = pushed(&stderr);
    assert_eq!(requests.len() as u64, windows, "{stderr}");
    // Two cuts, then the last window, which is sent when it holds samples
    // (SIGTERM can land just after a cut): the totals below show that every
    // sample arrived, those after the last cut included.
    assert!(windows >= 2, "two cuts and the last window: {stderr}");
    let local = read_with_go(&local);
    let pid = local.samples[0].2["pid"].clone();
    let mut total = 0;
    let mut until_last: Option<String> = None;
    for (i, r) in requests.iter().enumerate() {
        assert_eq!(r.path, "/ingest");
        assert_eq!(
            r.query["name"],
            format!("checkout{{env=prod,hostname={},pid={pid}}}", hostname())
        );
        assert_eq!(r.query["format"], "pprof");
        assert_eq!(r.query["sampleRate"], "100");
        assert!(!r.headers.contains_key("authorization"));
        if let Some(until) = &until_last {
            assert_eq!(&r.query["from"], until, "windows are contiguous");
        }
        until_last = Some(r.query["until"].clone());
        let (_, p) = read_pprof(&r.body, &dir, &format!("w{i}.pb.gz"));
        total += p.total();
    }
    assert_eq!(total, local.total());
    assert_eq!(samples, total, "{stderr}");
}

#[test]
fn pyroscope_server_answering_503_then_recovering() {
    let dir = out_dir("503");
    let receiver = Receiver::start(|n| Reply::Status(if n < 2 { 503 } else { 200 }));
    let (out, _) = record(
        &dir,
        &["--pyroscope", &receiver.url, "--push-every", "2", "-d", "7"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The first window was tried three times; then every window got through.
    let local = read_with_go(&dir.join("local.pb.gz"));
    let (windows, samples) = pushed(&stderr);
    assert_eq!(windows, 4, "{stderr}");
    assert_eq!(samples, local.total(), "{stderr}");
    assert!(stderr.contains("2 retries"), "{stderr}");
    assert!(!stderr.contains("not sent"), "{stderr}");
    assert_eq!(receiver.requests().len(), 6);
}

#[test]
fn pyroscope_server_hanging_then_answering() {
    let dir = out_dir("hang");
    // The first request hangs: it times out after 2 s, and is sent again.
    let receiver = Receiver::start(|n| {
        if n == 0 {
            Reply::Hang
        } else {
            Reply::Status(200)
        }
    });
    let (out, _) = record(
        &dir,
        &[
            "--pyroscope",
            &receiver.url,
            "--push-every",
            "2",
            "--pyroscope-timeout",
            "2",
            "-d",
            "7",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let local = read_with_go(&dir.join("local.pb.gz"));
    // Sampling went on meanwhile: the 3:1 share, a sane count.
    check_share(&local, "while the server hung");
    let (windows, samples) = pushed(&stderr);
    assert_eq!(windows, 4, "{stderr}");
    assert_eq!(samples, local.total(), "{stderr}");
    assert!(stderr.contains("1 retries"), "{stderr}");
}

#[test]
fn pyroscope_server_never_answering_or_refusing() {
    // Every request hangs: windows queue up and are dropped; the end waits
    // a bounded time (timeout + 2 s), and the local profile is whole.
    let dir = out_dir("dead");
    let receiver = Receiver::start(|_| Reply::Hang);
    let (out, took) = record(
        &dir,
        &[
            "--pyroscope",
            &receiver.url,
            "--push-every",
            "0.5",
            "--pyroscope-timeout",
            "1",
            "-d",
            "6",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(took < Duration::from_secs(30), "took {took:?}: {stderr}");
    receiver.wait_for(1, Duration::from_secs(1));
    assert_eq!(pushed(&stderr), (0, 0), "{stderr}");
    assert!(stderr.contains("dropped from the full queue"), "{stderr}");
    assert!(
        stderr.contains("no answer in time") || stderr.contains("did not answer"),
        "{stderr}"
    );
    check_share(&read_with_go(&dir.join("local.pb.gz")), "server hanging");

    // Nothing listens: connections are refused, retried, given up.
    let dir = out_dir("refused");
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let (out, _) = record(&dir, &["--pyroscope", &url, "--push-every", "1", "-d", "4"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(pushed(&stderr), (0, 0), "{stderr}");
    assert!(stderr.contains("not sent"), "{stderr}");
    assert!(read_with_go(&dir.join("local.pb.gz")).total() > 0);
}

#[test]
fn pyroscope_server_answering_401() {
    let dir = out_dir("401");
    let receiver = Receiver::start(|_| Reply::Status(401));
    let (out, _) = record(
        &dir,
        &[
            "--pyroscope",
            &receiver.url,
            "--push-every",
            "1",
            "-d",
            "3.5",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Said once, naming what to set; not retried.
    assert_eq!(
        stderr.matches("pushing to Pyroscope failed").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("answered 401"), "{stderr}");
    assert!(stderr.contains("PYROSCOPE_BASIC_AUTH_USER"), "{stderr}");
    assert_eq!(pushed(&stderr).0, 0, "{stderr}");
    let windows = receiver.requests().len();
    assert!((3..=5).contains(&windows), "{windows} requests: {stderr}");
}

/// `-s`: a pool's workers each get their own series, labelled with their pid.
#[test]
fn pyroscope_one_series_per_process() {
    let dir = out_dir("subprocesses");
    let receiver = Receiver::start(|_| Reply::Status(200));
    let (out, _) = record_script(
        &dir,
        &[
            "-s",
            "--pyroscope",
            &receiver.url,
            "--app-name",
            "pool",
            "--push-every",
            "0.5",
        ],
        "pool.py",
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let local = read_with_go(&dir.join("local.pb.gz"));
    let mut pids = std::collections::BTreeSet::new();
    let mut total = 0;
    let mut several = false;
    for (i, r) in receiver.requests().iter().enumerate() {
        let series = push_request(&r.body);
        several |= series.len() > 1;
        let mut in_request = std::collections::BTreeSet::new();
        for (j, s) in series.iter().enumerate() {
            assert_eq!(s.labels["service_name"], "pool");
            assert!(
                in_request.insert(s.labels["pid"].clone()),
                "a pid twice in one push"
            );
            let (_, p) = read_pprof(&s.pprof_gz, &dir, &format!("w{i}-{j}.pb.gz"));
            // The pprof's own pid label is the series' pid.
            for (_, _, labels) in &p.samples {
                assert_eq!(labels["pid"], s.labels["pid"]);
            }
            total += p.total();
        }
        pids.extend(in_request);
    }
    assert!(several, "no push had two processes: {stderr}");
    assert!(pids.len() >= 2, "pids {pids:?}: {stderr}");
    assert_eq!(total, local.total(), "{stderr}");
}
