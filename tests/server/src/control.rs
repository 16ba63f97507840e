//! The control API, served on its own port so control traffic never touches the counters.
//!
//! `GET /_control/counters`, `POST /_control/reset`, `POST /_control/script`,
//! `GET /_control/requests`, `POST /_control/close_connections`, `GET|POST /_control/dns`,
//! `GET /_control/info`, `GET /_control/proxies`, `GET /_control/otlp`.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::Shared;
use crate::body::Body;
use crate::conn::Phase;
use crate::dns::{DnsMode, DnsServer};
use crate::routes::{Reject, json_response};
use crate::script::Reply;

/// What the control port reads and changes.
pub(crate) struct Control {
    pub(crate) shared: Arc<Shared>,
    pub(crate) dns: DnsServer,
    /// The addresses, as printed by the binary.
    pub(crate) info: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptBody {
    path: String,
    replies: Vec<Reply>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DnsBody {
    name: Option<String>,
    #[serde(default)]
    ips: Vec<IpAddr>,
    #[serde(default = "default_ttl")]
    ttl: u32,
    fail: Option<DnsMode>,
    #[serde(default)]
    remove: bool,
    negative_ttl: Option<u32>,
}

fn default_ttl() -> u32 {
    30
}

pub(crate) async fn control_loop(
    control: Arc<Control>,
    listener: TcpListener,
    mut phase: watch::Receiver<Phase>,
) {
    let builder = Arc::new(auto::Builder::new(TokioExecutor::new()));
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = phase.changed() => return,
        };
        let Ok((tcp, _)) = accepted else { continue };
        let _ = tcp.set_nodelay(true);
        let control = control.clone();
        let builder = builder.clone();
        let mut phase = phase.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let control = control.clone();
                async move { Ok::<_, Infallible>(handle(&control, req).await) }
            });
            tokio::select! {
                _ = builder.serve_connection(TokioIo::new(tcp), svc) => {}
                _ = phase.wait_for(|_| false) => {}
            }
        });
    }
}

async fn handle(control: &Control, req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return bad_request(&e.to_string()),
    };
    let shared = &control.shared;
    match (&parts.method, parts.uri.path()) {
        (&Method::GET, "/_control/counters") => to_json(&shared.counters()),
        (&Method::POST, "/_control/reset") => {
            shared.reset();
            control.dns.reset_queries();
            ok()
        }
        (&Method::POST, "/_control/close_connections") => {
            shared.close_connections();
            ok()
        }
        (&Method::POST, "/_control/script") => match serde_json::from_slice::<ScriptBody>(&body) {
            Ok(s) => {
                shared.scripts.set(&s.path, s.replies);
                ok()
            }
            Err(e) => bad_request(&format!("bad script: {e}")),
        },
        (&Method::GET, "/_control/requests") => to_json(&shared.log.snapshot()),
        (&Method::GET, "/_control/dns") => json_response(
            StatusCode::OK,
            &json!({ "addr": control.dns.addr().to_string(), "queries": control.dns.all_queries() }),
        ),
        (&Method::POST, "/_control/dns") => match serde_json::from_slice::<DnsBody>(&body) {
            Ok(d) => dns(&control.dns, d),
            Err(e) => bad_request(&format!("bad dns request: {e}")),
        },
        (&Method::GET, "/_control/info") => json_response(StatusCode::OK, &control.info),
        (&Method::GET, "/_control/proxies") => match &shared.proxies {
            Some(p) => json_response(StatusCode::OK, &p.counters()),
            None => error_response(StatusCode::NOT_FOUND, "started without proxies"),
        },
        (&Method::GET, "/_control/otlp") => json_response(StatusCode::OK, &shared.otlp()),
        _ => error_response(StatusCode::NOT_FOUND, "no such control endpoint"),
    }
}

fn dns(server: &DnsServer, d: DnsBody) -> Response<Body> {
    if let Some(ttl) = d.negative_ttl {
        server.set_negative_ttl(ttl);
    }
    let Some(name) = d.name else {
        return if d.negative_ttl.is_some() {
            ok()
        } else {
            bad_request("name is required")
        };
    };
    match (d.fail, d.remove) {
        (_, true) => server.remove(&name),
        (Some(mode), false) => server.fail(&name, mode),
        (None, false) => server.set(&name, &d.ips, d.ttl),
    }
    ok()
}

fn ok() -> Response<Body> {
    json_response(StatusCode::OK, &json!({ "ok": true }))
}

fn to_json(value: &impl serde::Serialize) -> Response<Body> {
    match serde_json::to_value(value) {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => error_response(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

fn bad_request(message: &str) -> Response<Body> {
    Reject::new(StatusCode::BAD_REQUEST, message).into_response()
}

fn error_response(status: StatusCode, message: &str) -> Response<Body> {
    Reject::new(status, message).into_response()
}
