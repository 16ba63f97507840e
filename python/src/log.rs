//! The engine's log records for the `wirecore` logger: the bridge queues them process-wide and
//! a Python thread takes them here with the GIL released (`wirecore._log`).

use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// Keeps the engine's events up to `level` (`off` stops).
#[pyfunction]
#[pyo3(name = "_log_enable")]
pub(crate) fn log_enable(level: &str) -> PyResult<()> {
    let l = wirecore_bridge::log::parse_level(level).map_err(PyValueError::new_err)?;
    wirecore_bridge::log::enable(l, None).map_err(PyValueError::new_err)
}

/// One record as Python gets it: level, target, message, fields as JSON, time in ms.
type Row = (&'static str, &'static str, String, String, u64);

/// Up to 256 records as `(level, target, message, fields_json, time_ms)`, waiting (GIL
/// released) up to `timeout` seconds for the first.
#[pyfunction]
#[pyo3(name = "_log_next")]
pub(crate) fn log_next(py: Python<'_>, timeout: f64) -> PyResult<Vec<Row>> {
    let wait = Duration::try_from_secs_f64(timeout)
        .map_err(|_| PyValueError::new_err("timeout must be a number of seconds >= 0"))?;
    let mut got = Vec::new();
    py.detach(|| {
        wirecore_bridge::log::logs()
            .queue()
            .wait_with(256, Some(wait), |r| got.push(r));
    });
    Ok(got
        .into_iter()
        .map(|r| {
            let fields = r.fields_json();
            (r.level, r.target, r.message, fields, r.time_ms)
        })
        .collect())
}
