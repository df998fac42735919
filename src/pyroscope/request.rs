//! One window to the server: the push API (a `PushRequest` protobuf, the
//! Connect protocol's unary call: the message as the body) or the older
//! ingest API (one pprof body per process, labels in the `name` query
//! parameter). Answers are sorted into what a retry may fix and what it
//! will not.

use super::args::{Api, Config};
use super::window::{Series, Window};
use super::{PASSWORD_VAR, USER_VAR};
use prost::Message;
use std::io::Read;

/// grafana/pyroscope api/push/v1/push.proto and types/v1 LabelPair.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PushRequest {
    #[prost(message, repeated, tag = "1")]
    pub series: Vec<RawProfileSeries>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RawProfileSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<LabelPair>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<RawSample>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LabelPair {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RawSample {
    #[prost(bytes = "vec", tag = "1")]
    pub raw_profile: Vec<u8>,
    #[prost(string, tag = "2")]
    pub id: String,
}

/// Why a window was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The server is down, slow or busy: worth trying again.
    Retry(String),
    /// The server said no, and will say it again (bad URL, bad credentials).
    Permanent(String),
}

pub struct Client {
    agent: ureq::Agent,
    config: Config,
    hostname: String,
}

impl Client {
    pub fn new(config: Config) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(config.timeout))
            .timeout_connect(Some(config.timeout))
            .http_status_as_error(false)
            .user_agent(format!("pysampler/{}", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default();
        Client {
            agent,
            config,
            hostname,
        }
    }

    /// The labels of one process's series, sorted by name.
    fn labels(&self, pid: i32) -> Vec<(String, String)> {
        let mut labels = vec![
            ("__name__".to_string(), "process_cpu".to_string()),
            ("service_name".to_string(), self.config.app_name.clone()),
            ("pid".to_string(), pid.to_string()),
        ];
        if !self.hostname.is_empty() {
            labels.push(("hostname".to_string(), self.hostname.clone()));
        }
        labels.extend(self.config.tags.iter().cloned());
        labels.sort();
        labels
    }

    pub fn send(&self, window: &Window) -> Result<(), Failure> {
        match self.config.api {
            Api::Push => self.push(window),
            Api::Ingest => {
                for series in &window.series {
                    self.ingest(window, series)?;
                }
                Ok(())
            }
        }
    }

    fn push(&self, window: &Window) -> Result<(), Failure> {
        let request = PushRequest {
            series: window
                .series
                .iter()
                .map(|s| RawProfileSeries {
                    labels: self
                        .labels(s.pid)
                        .into_iter()
                        .map(|(name, value)| LabelPair { name, value })
                        .collect(),
                    samples: vec![RawSample {
                        raw_profile: s.pprof.clone(),
                        id: String::new(),
                    }],
                })
                .collect(),
        };
        let url = format!("{}/push.v1.PusherService/Push", self.config.url);
        let request_builder = self
            .agent
            .post(&url)
            .header("Content-Type", "application/proto")
            .header("Connect-Protocol-Version", "1");
        self.answer(
            &url,
            self.authorize(request_builder)
                .send(&request.encode_to_vec()[..]),
        )
    }

    fn ingest(&self, window: &Window, series: &Series) -> Result<(), Failure> {
        // The name carries the labels, Pyroscope's `app{k=v,...}`; the pprof
        // gives the sample types (its __name__ is the server's to choose).
        let labels: Vec<String> = self
            .labels(series.pid)
            .into_iter()
            .filter(|(k, _)| k != "__name__" && k != "service_name")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let name = format!("{}{{{}}}", self.config.app_name, labels.join(","));
        // Whole seconds, as the API takes them; a window shorter than a
        // second still spans one.
        let from = window.from_unix.floor() as i64;
        let until = (window.until_unix.floor() as i64).max(from + 1);
        let url = format!(
            "{}/ingest?name={}&from={}&until={}&format=pprof&sampleRate={}&spyName=pysampler",
            self.config.url,
            percent_encode(&name),
            from,
            until,
            self.rate(),
        );
        let request = self
            .agent
            .post(&url)
            .header("Content-Type", "application/octet-stream");
        self.answer(&url, self.authorize(request).send(&series.pprof[..]))
    }

    /// Samples per second, as the ingest API wants it (a whole number).
    fn rate(&self) -> u64 {
        self.config.rate_hz.round().max(1.0) as u64
    }

    fn authorize(
        &self,
        mut request: ureq::RequestBuilder<ureq::typestate::WithBody>,
    ) -> ureq::RequestBuilder<ureq::typestate::WithBody> {
        if let Some(tenant) = &self.config.tenant {
            request = request.header("X-Scope-OrgID", tenant);
        }
        if let Some((user, password)) = &self.config.basic_auth {
            let token = base64(format!("{user}:{password}").as_bytes());
            request = request.header("Authorization", format!("Basic {token}"));
        }
        request
    }

    fn answer(
        &self,
        url: &str,
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<(), Failure> {
        let mut response = match result {
            Ok(r) => r,
            Err(e) => return Err(classify_error(url, e)),
        };
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let mut body = String::new();
        let _ = response
            .body_mut()
            .as_reader()
            .take(300)
            .read_to_string(&mut body);
        let body = body.trim().replace('\n', " ");
        let said = if body.is_empty() {
            format!("{url} answered {status}")
        } else {
            format!("{url} answered {status}: {body}")
        };
        Err(match status {
            401 | 403 => Failure::Permanent(format!(
                "{said}; the server wants credentials: set ${USER_VAR} and ${PASSWORD_VAR}{}",
                if self.config.tenant.is_none() {
                    " (and --pyroscope-tenant on a multi-tenant server)"
                } else {
                    ""
                }
            )),
            404 | 405 => Failure::Permanent(format!(
                "{said}; is this a Pyroscope server? Servers older than Grafana Pyroscope 1.0 take --pyroscope-api ingest"
            )),
            408 | 429 | 500..=599 => Failure::Retry(said),
            _ => Failure::Permanent(said),
        })
    }
}

fn classify_error(url: &str, e: ureq::Error) -> Failure {
    match e {
        ureq::Error::Timeout(_) => Failure::Retry(format!("{url}: no answer in time ({e})")),
        ureq::Error::ConnectionFailed | ureq::Error::HostNotFound | ureq::Error::Io(_) => {
            Failure::Retry(format!("{url}: {e}"))
        }
        other => Failure::Permanent(format!("{url}: {other}")),
    }
}

/// RFC 3986 unreserved characters stay, everything else is %XX.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Standard base64 with padding (the Authorization header's).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        assert_eq!(
            base64(b"Aladdin:open sesame"),
            "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
        assert_eq!(base64(b""), "");
        assert_eq!(
            percent_encode("app{env=prod,pid=1}"),
            "app%7Benv%3Dprod%2Cpid%3D1%7D"
        );
    }
}
