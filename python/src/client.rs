//! The engine client as Python sees it: one object for both `wirecore.Client` and
//! `wirecore.AsyncClient`.
//!
//! Fork safety: the client remembers the pid it was built in; in a forked child the first call
//! rebuilds the engine client from the same config (the core runtime rebuilds itself likewise),
//! because the parent's connections and runtime threads do not exist there.

use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::bridge::{Completer, Pending};
use crate::error;
use crate::response::{Outcome, into_py_result, run};

/// How often a blocking call wakes to let Python run signal handlers (Ctrl-C).
const SIGNAL_SLICE: Duration = Duration::from_millis(50);

/// Runs `fut` on the shared runtime, with the GIL released, until it completes or a signal
/// handler raises (then the future is dropped, which cancels the request).
pub(crate) fn wait<F>(py: Python<'_>, fut: F) -> PyResult<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    let rt = wirecore::runtime::global();
    py.detach(|| {
        rt.block_on(async {
            let mut fut = std::pin::pin!(fut);
            loop {
                tokio::select! {
                    out = &mut fut => return Ok(out),
                    () = tokio::time::sleep(SIGNAL_SLICE) => {
                        // Not attaching while the interpreter exits: this thread keeps waiting.
                        #[expect(clippy::redundant_closure_for_method_calls, reason = "the method is not general over the lifetime")]
                        if let Some(r) = crate::bridge::with_python(|py| py.check_signals()) {
                            r?;
                        }
                    }
                }
            }
        })
    })
}

/// An engine client plus what it takes to rebuild it after `fork()`.
#[pyclass(frozen, module = "wirecore._wirecore")]
pub(crate) struct Client {
    config: wirecore::Config,
    state: Mutex<(u32, wirecore::Client)>,
}

impl Client {
    fn current(&self, py: Python<'_>) -> PyResult<wirecore::Client> {
        let pid = std::process::id();
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if s.0 != pid {
            let c = error::check(py, wirecore::Client::from_config(self.config.clone()))?;
            *s = (pid, c);
        }
        Ok(s.1.clone())
    }
}

type Headers = Vec<(String, String)>;

fn build_request(
    method: &str,
    url: &str,
    headers: Option<Headers>,
    body: Option<&[u8]>,
    timeout: Option<f64>,
) -> Result<wirecore::Request, wirecore::Error> {
    let mut req = wirecore::Request::new(wirecore::parse_method(method)?, url)?;
    if let Some(hs) = headers {
        let map = req.headers_mut();
        map.reserve(hs.len());
        for (n, v) in hs {
            let (n, v) = wirecore::parse_header(&n, &v)?;
            map.append(n, v);
        }
    }
    if let Some(b) = body {
        *req.body_mut() = wirecore::RequestBody::from(bytes::Bytes::copy_from_slice(b));
    }
    if let Some(t) = timeout {
        if !(t.is_finite() && t > 0.0) {
            return Err(wirecore::Error::new(
                wirecore::ErrorKind::InvalidRequest,
                format!("timeout must be a positive number of seconds, got {t}"),
            ));
        }
        *req.timeout_mut() = Some(Duration::from_secs_f64(t));
    }
    Ok(req)
}

#[pymethods]
impl Client {
    /// Builds a client from the core's config as JSON text (`{}` for every default).
    #[new]
    fn new(py: Python<'_>, config_json: &str) -> PyResult<Self> {
        let config = error::check(py, wirecore::Config::from_json(config_json))?;
        let rt = wirecore::runtime::global();
        let _enter = rt.enter();
        let client = error::check(py, wirecore::Client::from_config(config.clone()))?;
        Ok(Self {
            config,
            state: Mutex::new((std::process::id(), client)),
        })
    }

    /// Sends a request and blocks (GIL released) until the response, and its body unless
    /// `stream`, arrived.
    #[pyo3(signature = (method, url, headers=None, body=None, timeout=None, stream=false))]
    #[expect(
        clippy::too_many_arguments,
        reason = "mirrors the Python keyword arguments"
    )]
    fn send(
        &self,
        py: Python<'_>,
        method: &str,
        url: &str,
        headers: Option<Headers>,
        body: Option<&[u8]>,
        timeout: Option<f64>,
        stream: bool,
    ) -> PyResult<Py<PyAny>> {
        let req = error::check(py, build_request(method, url, headers, body, timeout))?;
        let client = self.current(py)?;
        let out = wait(py, run(client, req, stream))?;
        into_py_result(py, out)
    }

    /// Starts a request; its outcome completes `fut` on the completer's loop.
    #[pyo3(signature = (completer, fut, method, url, headers=None, body=None, timeout=None, stream=false))]
    #[expect(
        clippy::too_many_arguments,
        reason = "mirrors the Python keyword arguments"
    )]
    fn send_async(
        &self,
        py: Python<'_>,
        completer: &Completer,
        fut: Py<PyAny>,
        method: &str,
        url: &str,
        headers: Option<Headers>,
        body: Option<&[u8]>,
        timeout: Option<f64>,
        stream: bool,
    ) -> PyResult<Pending> {
        let req = error::check(py, build_request(method, url, headers, body, timeout))?;
        let client = self.current(py)?;
        let done = completer.handle();
        let task = wirecore::runtime::global().spawn(async move {
            let out = run(client, req, stream).await;
            done.complete(fut, out);
        });
        Ok(Pending {
            abort: task.abort_handle(),
        })
    }

    /// Refuses new requests, waits up to `timeout` seconds for in-flight ones, closes idle
    /// connections.
    #[pyo3(signature = (timeout=5.0))]
    fn close(&self, py: Python<'_>, timeout: f64) -> PyResult<()> {
        let d = secs(timeout)?;
        let client = self.current(py)?;
        wait(py, async move { client.close(d).await })
    }

    /// Like `close`, completing `fut` on the completer's loop.
    #[pyo3(signature = (completer, fut, timeout=5.0))]
    fn close_async(
        &self,
        py: Python<'_>,
        completer: &Completer,
        fut: Py<PyAny>,
        timeout: f64,
    ) -> PyResult<Pending> {
        let d = secs(timeout)?;
        let client = self.current(py)?;
        let done = completer.handle();
        let task = wirecore::runtime::global().spawn(async move {
            client.close(d).await;
            done.complete(fut, Outcome::Unit);
        });
        Ok(Pending {
            abort: task.abort_handle(),
        })
    }

    /// Every counter, as the core's JSON (`Stats::to_json`).
    fn stats_json(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.current(py)?.stats().to_json())
    }

    /// The stats in Prometheus text format.
    fn prometheus(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.current(py)?.prometheus())
    }

    /// The health report as JSON.
    fn diagnostics_json(&self, py: Python<'_>) -> PyResult<String> {
        let d = self.current(py)?.diagnostics();
        serde_json::to_string(&d).map_err(|e| PyValueError::new_err(e.to_string()))
    }

    /// The health report as text.
    fn diagnostics_text(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.current(py)?.diagnostics().to_string())
    }

    /// The effective config (every default filled in) as JSON.
    fn config_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.config).map_err(|e| PyValueError::new_err(e.to_string()))
    }
}

fn secs(t: f64) -> PyResult<Duration> {
    if t.is_finite() && t >= 0.0 {
        Ok(Duration::from_secs_f64(t))
    } else {
        Err(PyTypeError::new_err(format!(
            "timeout must be a non-negative number of seconds, got {t}"
        )))
    }
}
