//! `record`'s Pyroscope options, checked into a `Config`.

use super::{PASSWORD_VAR, USER_VAR};
use crate::error::{Error, Result};
use std::time::Duration;

/// Which of the server's APIs receives the profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Api {
    /// `POST /push.v1.PusherService/Push` (Grafana Pyroscope 1.0 and later)
    Push,
    /// `POST /ingest?name=...&format=pprof` (older Pyroscope servers)
    Ingest,
}

#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Pyroscope (continuous profiling)")]
pub struct PyroscopeArgs {
    /// Push the profile to this Grafana Pyroscope server (http:// or https://) every --push-every seconds; basic auth from $PYROSCOPE_BASIC_AUTH_USER and $PYROSCOPE_BASIC_AUTH_PASSWORD
    #[arg(long, value_name = "URL")]
    pub pyroscope: Option<String>,
    /// The service_name label in Pyroscope [default: the program's name]
    #[arg(long, value_name = "NAME", requires = "pyroscope")]
    pub app_name: Option<String>,
    /// A label on every profile pushed, KEY=VALUE (repeatable)
    #[arg(long, value_name = "KEY=VALUE", requires = "pyroscope", value_parser = parse_tag)]
    pub tag: Vec<(String, String)>,
    /// Seconds of samples in each push
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, requires = "pyroscope", value_parser = parse_every)]
    pub push_every: f64,
    /// The tenant (X-Scope-OrgID header) of a multi-tenant server
    #[arg(long, value_name = "ID", requires = "pyroscope")]
    pub pyroscope_tenant: Option<String>,
    /// The server API to send to
    #[arg(long, value_enum, default_value_t = Api::Push, requires = "pyroscope")]
    pub pyroscope_api: Api,
    /// Seconds one request to the server may take, connecting included
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, requires = "pyroscope", value_parser = parse_every)]
    pub pyroscope_timeout: f64,
}

/// What the uploader needs, checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// Without a trailing slash.
    pub url: String,
    pub app_name: String,
    pub tags: Vec<(String, String)>,
    pub every: Duration,
    pub tenant: Option<String>,
    pub api: Api,
    pub timeout: Duration,
    /// (user, password) from the environment.
    pub basic_auth: Option<(String, String)>,
    /// The sampling rate (the ingest API's sampleRate).
    pub rate_hz: f64,
}

impl PyroscopeArgs {
    /// The checked configuration, or `None` without `--pyroscope`.
    pub fn config(&self, program: &str, rate_hz: f64) -> Result<Option<Config>> {
        let Some(url) = &self.pyroscope else {
            return Ok(None);
        };
        let url = url.trim_end_matches('/').to_string();
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"));
        if rest.map_or(true, str::is_empty) {
            return Err(Error::BadOptions(format!(
                "--pyroscope {url}: give the server's address with http:// or https://, e.g. http://pyroscope:4040"
            )));
        }
        let app_name = self.app_name.clone().unwrap_or_else(|| program.to_string());
        if app_name.is_empty() {
            return Err(Error::BadOptions("--app-name is empty".into()));
        }
        let user = std::env::var(USER_VAR).ok().filter(|u| !u.is_empty());
        let password = std::env::var(PASSWORD_VAR).ok();
        let basic_auth = match (user, password) {
            (Some(u), p) => Some((u, p.unwrap_or_default())),
            (None, Some(_)) => {
                return Err(Error::BadOptions(format!(
                    "${PASSWORD_VAR} is set but ${USER_VAR} is not: set both for basic auth"
                )))
            }
            (None, None) => None,
        };
        Ok(Some(Config {
            url,
            app_name,
            tags: self.tag.clone(),
            every: Duration::from_secs_f64(self.push_every),
            tenant: self.pyroscope_tenant.clone(),
            api: self.pyroscope_api,
            timeout: Duration::from_secs_f64(self.pyroscope_timeout),
            basic_auth,
            rate_hz,
        }))
    }
}

/// Labels the pusher sets itself, which a tag may not replace.
const RESERVED: [&str; 4] = ["__name__", "service_name", "pid", "hostname"];

/// "KEY=VALUE", KEY a Prometheus label name not reserved.
fn parse_tag(s: &str) -> std::result::Result<(String, String), String> {
    let (key, value) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: a tag is KEY=VALUE, e.g. env=prod"))?;
    let valid = key
        .chars()
        .enumerate()
        .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
    if key.is_empty() || !valid || key.starts_with("__") {
        return Err(format!(
            "{key:?}: a tag's key is letters, digits and _, not starting with a digit or __"
        ));
    }
    if RESERVED.contains(&key) {
        return Err(format!(
            "{key:?} is set by pysampler (service_name is --app-name)"
        ));
    }
    Ok((key.to_string(), value.to_string()))
}

fn parse_every(s: &str) -> std::result::Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(0.5..=3600.0).contains(&v) {
        return Err(format!("{v} s: give between 0.5 and 3600 seconds"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags() {
        assert_eq!(
            parse_tag("env=prod").unwrap(),
            ("env".to_string(), "prod".to_string())
        );
        assert_eq!(parse_tag("region=eu=1").unwrap().1, "eu=1");
        assert!(parse_tag("env").is_err());
        assert!(parse_tag("1x=a").is_err());
        assert!(parse_tag("a-b=c").is_err());
        assert!(parse_tag("__name__=x").is_err());
        assert!(parse_tag("service_name=x").is_err());
    }

    #[test]
    fn urls_are_checked() {
        let args = |url: &str| PyroscopeArgs {
            pyroscope: Some(url.to_string()),
            app_name: None,
            tag: Vec::new(),
            push_every: 10.0,
            pyroscope_tenant: None,
            pyroscope_api: Api::Push,
            pyroscope_timeout: 10.0,
        };
        let c = args("http://host:4040/")
            .config("app", 100.0)
            .unwrap()
            .unwrap();
        assert_eq!(c.url, "http://host:4040");
        assert_eq!(c.app_name, "app");
        assert!(args("host:4040").config("app", 100.0).is_err());
        assert!(args("https://").config("app", 100.0).is_err());
    }
}
