//! A real service: FastAPI under uvicorn, under HTTP load from this test,
//! recorded by pid — alone, and with `--workers 2` plus `--subprocesses`.

use crate::formats::parse_folded_line;
use crate::pythons::scratch_dir;
use crate::target::{fixtures_dir, PYSAMPLER};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// The virtual environment `make test` builds with scripts/web-venv.sh.
fn web_venv() -> PathBuf {
    let venv = std::env::var_os("PYSAMPLER_WEB_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/pysampler/web-venv")
        });
    assert!(
        venv.join("bin/uvicorn").exists(),
        "{} has no uvicorn: run `bash scripts/web-venv.sh` (make test does)",
        venv.display()
    );
    venv
}

/// A uvicorn server; killed (with its workers) when dropped.
pub(crate) struct Server {
    pub(crate) child: Child,
    port: u16,
    /// pids from uvicorn's "Started server process [PID]" lines.
    pub(crate) server_pids: Vec<i32>,
}

impl Server {
    pub(crate) fn start(workers: usize) -> Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new(web_venv().join("bin/uvicorn"))
            .args([
                "web_app:app",
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
            ])
            .args([
                "--workers",
                &workers.to_string(),
                "--log-level",
                "info",
                "--no-access-log",
            ])
            .current_dir(fixtures_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("start uvicorn");
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut server_pids = Vec::new();
        let mut started = 0;
        let deadline = Instant::now() + Duration::from_secs(60);
        while started < workers {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).expect("uvicorn starts its workers");
            if let Some(pid) = line.split("Started server process [").nth(1) {
                server_pids.push(pid.trim_end_matches(']').parse().unwrap());
            }
            if line.contains("Application startup complete") {
                started += 1;
            }
        }
        Server {
            child,
            port,
            server_pids,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The whole process group: the master and its workers.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

use std::os::unix::process::CommandExt;

/// Clients requesting /report in a loop until dropped.
struct Load {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(port: u16, clients: usize) -> Load {
        Load::start_on(port, clients, "/report", "\"total\"")
    }

    /// Clients requesting `path`; an answer containing `marker` counts.
    fn start_on(port: u16, clients: usize, path: &'static str, marker: &'static str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let threads = (0..clients)
            .map(|_| {
                let (stop, done) = (stop.clone(), done.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        if get(port, path).contains(marker) {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            done,
            threads,
        }
    }

    /// Blocks until `n` requests have been answered (the service is busy).
    fn wait_for(&self, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.done.load(Ordering::Relaxed) < n {
            assert!(Instant::now() < deadline, "the service answers no requests");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn get(port: u16, path: &str) -> String {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    if s.write_all(request.as_bytes()).is_err() {
        return String::new();
    }
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body
}

fn record_pid(pid: i32, extra: &[&str], name: &str) -> Vec<(Vec<String>, u64)> {
    let dir = scratch_dir().join("web");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let out = Command::new(PYSAMPLER)
        .args([
            "record",
            "--pid",
            &pid.to_string(),
            "-d",
            "2",
            "-f",
            "raw",
            "-o",
        ])
        .arg(&path)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| {
            let (frames, count) = parse_folded_line(l);
            (frames.iter().map(|f| f.to_string()).collect(), count)
        })
        .collect()
}

fn has_frame(stack: &[String], function: &str) -> bool {
    stack
        .iter()
        .any(|f| f.starts_with(&format!("{function} (web_app.py:")))
}

#[test]
fn uvicorn_service_handler_appears_in_the_profile() {
    let server = Server::start(1);
    let load = Load::start(server.port, 2);
    load.wait_for(5);
    let stacks = record_pid(server.child.id() as i32, &[], "single.txt");
    let handler: u64 = stacks
        .iter()
        .filter(|(s, _)| has_frame(s, "report_handler") && has_frame(s, "compute_report"))
        .map(|(_, c)| c)
        .sum();
    let total: u64 = stacks.iter().map(|(_, c)| c).sum();
    assert!(handler > 0, "the handler is not in the profile: {stacks:?}");
    assert!(
        handler * 2 > total,
        "the busy handler has {handler} of {total} samples"
    );
    drop(load);
}

#[test]
fn uvicorn_workers_all_appear_with_subprocesses() {
    let server = Server::start(2);
    assert_eq!(server.server_pids.len(), 2, "uvicorn named its two workers");
    let load = Load::start(server.port, 4);
    load.wait_for(10);
    let stacks = record_pid(server.child.id() as i32, &["-s", "--idle"], "workers.txt");
    for pid in &server.server_pids {
        let root = format!("process {pid}:");
        assert!(
            stacks.iter().any(|(s, _)| s[0].starts_with(&root)),
            "worker {pid} is not a root of the profile"
        );
    }
    assert!(
        stacks.iter().any(|(s, _)| has_frame(s, "compute_report")),
        "no handler samples"
    );
    drop(load);
}

/// `record --async` on a service whose handler awaits a 50 ms then a 10 ms
/// query, under 8 concurrent clients: the handler's tasks are seen waiting
/// in both, about 5:1 (wide bounds: a loaded machine stretches the short
/// sleep more, and each request's HTTP handling counts for neither).
#[test]
fn uvicorn_async_handler_awaits_appear_with_async() {
    let server = Server::start(1);
    let load = Load::start_on(server.port, 8, "/orders", "\"orders\"");
    load.wait_for(10);
    let stacks = record_pid(server.child.id() as i32, &["--async"], "async.txt");
    let in_query = |query: &str| -> u64 {
        stacks
            .iter()
            .filter(|(s, _)| has_frame(s, "orders_handler") && has_frame(s, query))
            .map(|(_, c)| c)
            .sum()
    };
    let (orders, user) = (in_query("query_orders"), in_query("query_user"));
    let share = orders as f64 / (orders + user).max(1) as f64;
    assert!(
        orders + user >= 100 && (0.65..=0.95).contains(&share),
        "the handler awaits: {orders} samples in query_orders, {user} in query_user: {stacks:?}"
    );
    drop(load);
}
